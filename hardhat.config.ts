import { createRequire } from "node:module";

import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { defineConfig } from "hardhat/config";

// Hardhat cannot download compilers here (no internet), so it uses the WASM build that the
// pinned npm `solc` package ships. Same bytes on every machine, online or not.
const require = createRequire(import.meta.url);
const SOLC_VERSION = "0.8.37";

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    profiles: {
      default: {
        version: SOLC_VERSION,
        path: require.resolve("solc/soljson.js"),
        settings: { viaIR: true, optimizer: { enabled: true, runs: 10_000 }, evmVersion: "osaka" },
      },
      production: {
        version: SOLC_VERSION,
        path: require.resolve("solc/soljson.js"),
        settings: { viaIR: true, optimizer: { enabled: true, runs: 10_000 }, evmVersion: "osaka" },
      },
    },
  },
  networks: {
    default: {
      type: "edr-simulated",
      chainType: "l1",
      // The in-process network mines each transaction at once; a block of 60M gas holds a few
      // maximum-size batch transactions (2^24 gas each, EIP-7825).
      blockGasLimit: 60_000_000n,
    },
    // `npx hardhat node` in another terminal. PREPAID_LEDGER_LOCALHOST_URL moves it (tests start
    // their node on a free port); it is an address, not a secret.
    localhost: {
      type: "http",
      chainType: "l1",
      url: process.env.PREPAID_LEDGER_LOCALHOST_URL ?? "http://127.0.0.1:8545",
    },
  },
});
