import { createRequire } from "node:module";

import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";

// Hardhat cannot download compilers here (no internet), so it uses the WASM build that the
// pinned npm `solc` package ships. Same bytes on every machine, online or not.
const require = createRequire(import.meta.url);
const solc = (evmVersion: string) => ({
  version: "0.8.37",
  path: require.resolve("solc/soljson.js"),
  settings: { viaIR: true, optimizer: { enabled: true, runs: 10_000 }, evmVersion },
});

// A chain id that is not a secret may come from the environment; everything secret goes through
// configVariable (environment variable or `npx hardhat keystore set NAME`).
const evmChainId = process.env.EVM_CHAIN_ID === undefined ? undefined : Number(process.env.EVM_CHAIN_ID);

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    // Compile for the EVM the target chain runs: `--build-profile london` for a Besu genesis that
    // stops at London (no PUSH0, no MCOPY), `shanghai`/`cancun` likewise. The default follows
    // Hardhat's own network (osaka).
    profiles: {
      default: solc("osaka"),
      production: solc("osaka"),
      london: solc("london"),
      shanghai: solc("shanghai"),
      cancun: solc("cancun"),
    },
  },
  // `npx hardhat ignition verify chain-11155111`: the key is read only when verifying.
  verify: { etherscan: { apiKey: configVariable("ETHERSCAN_API_KEY") } },
  networks: {
    default: {
      type: "edr-simulated",
      chainType: "l1",
      // The in-process network mines each transaction at once; a block of 60M gas holds a few
      // maximum-size batch transactions (2^24 gas each, EIP-7825).
      blockGasLimit: 60_000_000n,
    },
    // `npx hardhat node` in another terminal (its unlocked dev accounts sign).
    localhost: {
      type: "http",
      chainType: "l1",
      url: configVariable("LOCALHOST_RPC_URL", { default: "http://127.0.0.1:8545" }),
    },
    // Foundry's anvil (`npx anvil`), with its unlocked dev accounts.
    anvil: {
      type: "http",
      chainType: "l1",
      chainId: 31337,
      url: configVariable("ANVIL_RPC_URL", { default: "http://127.0.0.1:8545" }),
    },
    // The Ethereum public testnet. README "Deploy to a testnet" walks through the two secrets.
    sepolia: {
      type: "http",
      chainType: "l1",
      chainId: 11155111,
      url: configVariable("SEPOLIA_RPC_URL"),
      accounts: [configVariable("SEPOLIA_PRIVATE_KEY")],
    },
    // A Besu QBFT consortium chain (docs/QBFT.md); compile with `--build-profile london` if its
    // genesis stops at London.
    besu: {
      type: "http",
      chainType: "l1",
      chainId: Number(process.env.BESU_CHAIN_ID ?? 1337),
      url: configVariable("BESU_RPC_URL", { default: "http://127.0.0.1:8545" }),
      accounts: [configVariable("BESU_PRIVATE_KEY")],
    },
    // Any other EVM chain: EVM_RPC_URL and EVM_PRIVATE_KEY (secrets), EVM_CHAIN_ID (checked
    // against the node before anything is sent).
    evm: {
      type: "http",
      chainType: "l1",
      ...(evmChainId === undefined ? {} : { chainId: evmChainId }),
      url: configVariable("EVM_RPC_URL"),
      accounts: [configVariable("EVM_PRIVATE_KEY")],
    },
  },
});
