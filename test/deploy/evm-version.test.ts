import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import { expect } from "chai";
import { ContractFactory, JsonRpcProvider, getBytes, id, type InterfaceAbi } from "ethers";
import { artifacts, config } from "hardhat";

import { packBatch } from "../../src/ledger/codec.js";
import { startAnvil } from "../helpers/processes.js";

const require = createRequire(import.meta.url);

/** Opcodes a London-fork chain does not know: PUSH0 (Shanghai), TLOAD/TSTORE/MCOPY (Cancun), CLZ (Osaka). */
const POST_LONDON = new Map([
  [0x5f, "PUSH0"],
  [0x5c, "TLOAD"],
  [0x5d, "TSTORE"],
  [0x5e, "MCOPY"],
  [0x1e, "CLZ"],
]);

/**
 * The opcodes of runtime `bytecode`, walked instruction by instruction (PUSH data skipped),
 * without the CBOR metadata solc appends (its last two bytes are its length).
 */
function opcodes(bytecode: string): Set<number> {
  const all = getBytes(bytecode);
  const code = all.subarray(0, all.length - 2 - ((all[all.length - 2] << 8) | all[all.length - 1]));
  const seen = new Set<number>();
  for (let pc = 0; pc < code.length; pc++) {
    const op = code[pc];
    seen.add(op);
    if (op >= 0x60 && op <= 0x7f) pc += op - 0x5f; // PUSH1..PUSH32 carry 1..32 bytes
  }
  return seen;
}

const postLondon = (bytecode: string) => [...opcodes(bytecode)].filter((op) => POST_LONDON.has(op)).map((op) => POST_LONDON.get(op));

/**
 * Compiles PrepaidLedger (and MerchantCustody) with the `london` build profile's settings, straight through the same
 * npm solc (so the tests never overwrite the default build's artifacts).
 */
function compileFor(evmVersion: string): { abi: InterfaceAbi; bytecode: string; deployedBytecode: string; custodyDeployedBytecode: string } {
  const solc = require("solc") as { compile(input: string, callbacks: object): string };
  const profile = config.solidity.profiles[evmVersion];
  expect(profile, `build profile ${evmVersion}`).to.not.equal(undefined);
  const settings = profile!.compilers[0].settings as Record<string, unknown>;
  expect(settings.evmVersion).to.equal(evmVersion);
  const root = config.paths.root;
  const sources: Record<string, { content: string }> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith(".sol")) sources[path] = { content: readFileSync(join(root, path), "utf8") };
    }
  };
  walk("contracts");
  const findImports = (path: string) => {
    const file = join(dirname(require.resolve("@openzeppelin/contracts/package.json")), path.replace(/^@openzeppelin\/contracts\//, ""));
    return existsSync(file) ? { contents: readFileSync(file, "utf8") } : { error: `not found: ${path}` };
  };
  const input = {
    language: "Solidity",
    sources,
    settings: { ...settings, outputSelection: {
        "contracts/PrepaidLedger.sol": { PrepaidLedger: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
        "contracts/MerchantCustody.sol": { MerchantCustody: ["evm.deployedBytecode.object"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports })) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<
      string,
      Record<string, { abi: InterfaceAbi; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>
    >;
  };
  expect((output.errors ?? []).filter((e) => e.severity === "error").map((e) => e.formattedMessage)).to.deep.equal([]);
  const contract = output.contracts["contracts/PrepaidLedger.sol"].PrepaidLedger;
  return {
    abi: contract.abi,
    bytecode: "0x" + contract.evm.bytecode.object,
    deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
    custodyDeployedBytecode: "0x" + output.contracts["contracts/MerchantCustody.sol"].MerchantCustody.evm.deployedBytecode.object,
  };
}

describe("compiling for the target chain's EVM (build profiles)", function () {
  this.timeout(180_000);
  let london: ReturnType<typeof compileFor>;
  let anvil: Awaited<ReturnType<typeof startAnvil>>;
  let provider: JsonRpcProvider;

  before(async function () {
    london = compileFor("london");
    anvil = await startAnvil(["--hardfork", "london"]);
    provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, pollingInterval: 20 });
  });

  after(async function () {
    provider?.destroy();
    await anvil?.stop();
  });

  it("the default (osaka) build uses PUSH0; the london build uses no post-London opcode", async function () {
    const osaka = await artifacts.readArtifact("PrepaidLedger");
    expect(postLondon(osaka.deployedBytecode)).to.include("PUSH0");
    expect(postLondon(london.deployedBytecode)).to.deep.equal([]);
    expect(postLondon(london.custodyDeployedBytecode), "MerchantCustody").to.deep.equal([]);
  });

  it("a London chain refuses the default build and runs the london build", async function () {
    const [admin, regulator, recorder] = await Promise.all([0, 1, 2].map((i) => provider.getSigner(i)));
    const osaka = await artifacts.readArtifact("PrepaidLedger");
    let refused: unknown;
    try {
      const failing = await new ContractFactory(osaka.abi, osaka.bytecode, admin).deploy(admin.address, regulator.address, 0, 3_600);
      await failing.waitForDeployment();
    } catch (e) {
      refused = e;
    }
    expect(refused, "a London EVM must not run PUSH0").to.not.equal(undefined);

    const ledger = await new ContractFactory(london.abi, london.bytecode, admin).deploy(admin.address, regulator.address, 0, 3_600);
    await ledger.waitForDeployment();
    await (await (ledger.connect(regulator) as typeof ledger).getFunction("registerMerchant")(1, recorder.address)).wait();
    const card = id("london card");
    const records = [
      { kind: 1, amount: 5_000n, account: getBytes(card), commitment: getBytes(id("c1")), ciphertext: Uint8Array.of(2, 1, 2) },
      { kind: 2, amount: 1_200n, account: getBytes(card), commitment: getBytes(id("c2")), ciphertext: Uint8Array.of(2, 3, 4) },
    ];
    const asRecorder = ledger.connect(recorder) as typeof ledger;
    await (await asRecorder.getFunction("recordBatch")(1, 1, "0x", packBatch(records))).wait();
    expect(await ledger.getFunction("balanceOf")(1, card)).to.equal(3_800n);
    expect((await ledger.getFunction("chainHead")())[0]).to.equal(2n);
  });
});
