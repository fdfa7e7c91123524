/**
 * The package as users install it: `npm run build`, `npm pack`, then an empty project installs
 * the tarball (offline, from the local npm cache) and uses it the way the README's "Use it from
 * your app" section says: a plain-Node ESM script, a strict TypeScript project, `npx prepaid`,
 * and the merchant back-end example, killed mid-upload and restarted.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";
import { ContractFactory, JsonRpcProvider, Wallet, id, parseEther } from "ethers";
import { artifacts } from "hardhat";

import { publicKeyOf } from "../../src/crypto/ecies.js";
import { RegulatorReader } from "../../src/regulator/reader.js";
import { startCommand, startHardhatNode, type Running } from "../helpers/processes.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(import.meta.url);
const version = (pkg: string) => (require(`${pkg}/package.json`) as { version: string }).version;

/** This Node (>= 22.13, the pinned one) first on PATH, then the repository's tools. */
const PATH = [dirname(process.execPath), join(root, "node_modules", ".bin"), process.env.PATH].join(delimiter);
/** The machine's own Node, when it is an older one: the SDK claims to run on Node 20. */
const OLD_NODE = "/usr/bin/node";

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, PATH, ...env }, maxBuffer: 64 << 20 });
}

function ok(result: SpawnSyncReturns<string>, what: string): string {
  expect(result.status, `${what} failed:\n${result.stdout}\n${result.stderr}`).to.equal(0);
  return result.stdout;
}

const REGULATOR_KEY = id("install test: regulator encryption key");
const MERCHANT = 101;

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

/** Waits until `condition` holds; fails with the process's output if it exits or 60 s pass. */
async function until(condition: () => boolean, running: Running) {
  const deadline = Date.now() + 60_000;
  while (!condition()) {
    if (running.process.exitCode !== null) throw new Error(`exited with ${running.process.exitCode}:\n${running.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out:\n${running.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * An empty merchant project that depends on the tarball, with TypeScript and Node's types for
 * the strict type-check, and its lockfile. Why a lockfile: `npm install <tarball>` resolves each
 * dependency's version from the registry's package document, and this machine is offline; the
 * npm cache holds the dependencies' tarballs (by integrity), which is what `npm ci` reads. So the
 * lockfile pins the tarball and, for its dependencies, the versions this repository is tested
 * with: every entry of the repository's lockfile that is not dev-only (npm marks those `dev`).
 * A dependency the package declares but the lockfile lacks makes `npm ci` fail; `npm ls` in the
 * test checks every installed version satisfies the ranges the package declares.
 */
function writeProject(dir: string, tarball: string) {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, unknown> & { version: string };
  const repoLock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, Record<string, unknown>> };
  const dev = { typescript: version("typescript"), "@types/node": version("@types/node") };
  const manifest = { name: "merchant-app", private: true, type: "module", dependencies: { "prepaid-ledger": `file:${tarball}` }, devDependencies: dev };
  const packages: Record<string, Record<string, unknown>> = {
    "": { name: manifest.name, dependencies: manifest.dependencies, devDependencies: dev },
    "node_modules/prepaid-ledger": {
      version: pkg.version,
      resolved: `file:${tarball}`,
      integrity: "sha512-" + createHash("sha512").update(readFileSync(join(dir, tarball))).digest("base64"),
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(repoLock.packages)) {
    if (path !== "" && entry.dev !== true && entry.devOptional !== true) packages[path] = entry;
  }
  // The project's own dev tools, with what they depend on, as the repository pins them.
  const tools = ["node_modules/typescript", "node_modules/@types/node"];
  for (let i = 0; i < tools.length; i++) {
    const { dev: _, ...entry } = repoLock.packages[tools[i]!]!;
    packages[tools[i]!] = entry;
    for (const name of Object.keys((entry.dependencies ?? {}) as Record<string, string>)) {
      if (!tools.includes(`node_modules/${name}`) && packages[`node_modules/${name}`] === undefined) tools.push(`node_modules/${name}`);
    }
  }
  writeFileSync(join(dir, "package.json"), JSON.stringify(manifest, null, 2));
  writeFileSync(join(dir, "package-lock.json"), JSON.stringify({ name: manifest.name, lockfileVersion: 3, requires: true, packages }, null, 2));
}

describe("the package as users install it (npm pack → empty project)", function () {
  this.timeout(300_000);
  let pack: PackResult;
  let app: string;
  /** Temporary folders to remove: the project holds a hundred megabytes of node_modules. */
  const temporary: string[] = [];
  let node: Running & { url: string };
  let provider: JsonRpcProvider;

  before(async function () {
    ok(sh("npm", ["run", "--silent", "build"], root), "npm run build");
    const out = mkdtempSync(join(tmpdir(), "prepaid-ledger-pack-"));
    temporary.push(out);
    // Built just above; --ignore-scripts so that prepack does not build a second time.
    [pack] = JSON.parse(ok(sh("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", out], root), "npm pack")) as PackResult[];

    app = mkdtempSync(join(tmpdir(), "prepaid-ledger-app-"));
    temporary.push(app);
    copyFileSync(join(out, pack.filename), join(app, pack.filename));
    writeProject(app, pack.filename);
    // --offline: every package from the local npm cache, nothing from the network.
    const install = sh("npm", ["ci", "--offline", "--no-audit", "--no-fund"], app);
    if (install.status !== 0) {
      const missing = /ENOTCACHED/.test(install.stderr + install.stdout);
      throw new Error(
        (missing
          ? "a dependency of the package is not in the local npm cache (ENOTCACHED); run `npm ci` in the repository once online:\n"
          : "npm ci of the tarball failed:\n") + install.stderr,
      );
    }

    node = await startHardhatNode();
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, pollingInterval: 50 });
  });

  after(async function () {
    provider?.destroy();
    await node?.stop();
    for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh ledger (from the repository's artifacts) with merchant 101 and a funded recorder. */
  async function deployWithMerchant(): Promise<{ ledger: string; recorder: Wallet }> {
    const [admin, regulator] = await Promise.all([0, 1].map((i) => provider.getSigner(i)));
    const recorder = Wallet.createRandom();
    await (await admin.sendTransaction({ to: recorder.address, value: parseEther("10") })).wait();
    const artifact = await artifacts.readArtifact("PrepaidLedger");
    const contract = await new ContractFactory(artifact.abi, artifact.bytecode, admin).deploy(admin.address, regulator.address, 0, 3_600);
    await contract.waitForDeployment();
    await (await (contract.connect(regulator) as typeof contract).getFunction("registerMerchant")(MERCHANT, recorder.address)).wait();
    return { ledger: await contract.getAddress(), recorder: new Wallet(recorder.privateKey) };
  }

  it("holds the compiled package and nothing else (no keys, records, tests or screenshots)", function () {
    const files = pack.files.map((f) => f.path).sort();
    const outside = files.filter((f) => !f.startsWith("dist/"));
    expect(outside).to.deep.equal(["CHANGELOG.md", "LICENSE", "README.md", "bin/prepaid.mjs", "package.json"]);
    for (const f of files) {
      expect(f, "a key, records, an index, a screenshot or a source file").not.to.match(/\.(key|pem|csv|sqlite|sqlite-wal|png|jpe?g|env|sol)$/i);
      expect(f, "TypeScript source").not.to.match(/(?<!\.d)\.ts$/);
      expect(f, "tests").not.to.match(/(^|\/)(test|tests|__tests__)\//);
      expect(f, "a dist file is JavaScript, a declaration or a source map").to.satisfy(
        (p: string) => !p.startsWith("dist/") || /\.(js|d\.ts|js\.map)$/.test(p),
      );
    }
    for (const entry of ["dist/index.js", "dist/index.d.ts", "dist/index.js.map", "dist/crypto/index.js", "dist/ledger/codec.js", "dist/browser/index.js", "dist/abi/index.js", "dist/abi/index.d.ts", "dist/cli/main.js"]) {
      expect(files).to.include(entry);
    }
    // Every exports target ships.
    const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports: Record<string, string | Record<string, string>> };
    for (const target of Object.values(manifest.exports).flatMap((t) => (typeof t === "string" ? [t] : Object.values(t)))) {
      expect(files, `exports target ${target}`).to.include(target.replace(/^\.\//, ""));
    }
    expect(pack.size, "tarball bytes").to.be.below(1_000_000);
    console.log(`      tarball ${pack.filename}: ${pack.entryCount} files, ${(pack.size / 1024).toFixed(0)} kB (${(pack.unpackedSize / 1024).toFixed(0)} kB unpacked)`);
  });

  it("installs with its dependencies and without tsx", function () {
    const ls = JSON.parse(ok(sh("npm", ["ls", "--json", "--all"], app), "npm ls")) as { dependencies: Record<string, { dependencies?: Record<string, unknown> }> };
    expect(Object.keys(ls.dependencies["prepaid-ledger"].dependencies ?? {}).sort()).to.deep.equal(["@noble/ciphers", "@noble/curves", "@noble/hashes", "echarts", "ethers", "hash-wasm", "pg", "qrcode", "zod"]);
    expect(existsSync(join(app, "node_modules", "tsx")), "tsx installed: the package still needs a TypeScript loader").to.equal(false);
    // The dashboard draws its charts with ECharts, loaded when it starts (before it opens the index).
    writeFileSync(
      join(app, "charts.mjs"),
      `import { serveDashboard } from "prepaid-ledger";
await serveDashboard({ db: "no-such-index.sqlite" }).catch((e) => console.log(e.code));`,
    );
    expect(ok(sh(process.execPath, ["charts.mjs"], app), "charts.mjs").trim()).to.equal("INVALID_ARGUMENT");
  });

  it("uploads with Uploader and reads back with RegulatorReader from a plain-Node ESM script", async function () {
    const admin = await provider.getSigner(0);
    const recorder = Wallet.createRandom();
    await (await admin.sendTransaction({ to: recorder.address, value: parseEther("10") })).wait();
    writeFileSync(
      join(app, "upload.mjs"),
      `import { JsonRpcProvider, Wallet, id } from "ethers";
import { RecordKind, RegulatorReader, Uploader, publicKeyOf } from "prepaid-ledger";
import { PrepaidLedger__factory } from "prepaid-ledger/abi";
import { CHAIN_VERSION } from "prepaid-ledger/codec";
import { keccak256 } from "prepaid-ledger/crypto";

const [url, regulatorKey, recorderKey] = process.argv.slice(2);
const provider = new JsonRpcProvider(url);
const admin = await provider.getSigner(0);
const regulator = await provider.getSigner(1);
const ledger = await new PrepaidLedger__factory(admin).deploy(admin.address, regulator.address, 0, 3600);
await ledger.waitForDeployment();
const recorder = new Wallet(recorderKey, provider);
await (await ledger.connect(regulator).registerMerchant(${MERCHANT}, recorder.address)).wait();

const uploader = await Uploader.open(
  { ledger: await ledger.getAddress(), merchantId: ${MERCHANT}, regulatorPublicKey: publicKeyOf(regulatorKey), journalPath: "./journal/merchant-${MERCHANT}.jsonl" },
  recorder,
);
const card = id("card 6200-0000-0042");
const time = 1795000000;
const uploaded = await uploader.upload([
  { kind: RecordKind.TopUp, merchantId: ${MERCHANT}, account: card, amount: 300000n, time, orderRef: "GYM-1", memo: "annual card" },
  { kind: RecordKind.Consume, merchantId: ${MERCHANT}, account: card, amount: 4500n, time: time + 60, orderRef: "GYM-2", memo: "yoga" },
]);
uploader.close();

// The regulator, another party, reads through its own connection.
const regulatorProvider = new JsonRpcProvider(url);
const reader = await RegulatorReader.open({ ledger: await ledger.getAddress(), privateKey: regulatorKey, keepRecords: true }, regulatorProvider);
const report = await reader.read();
console.log(JSON.stringify({
  node: process.versions.node,
  chainVersion: CHAIN_VERSION,
  hash: keccak256(new Uint8Array([1])).length,
  indexes: uploaded.map((r) => r.recordIndex),
  blocks: uploaded.map((r) => r.blockNumber),
  toBlock: report.toBlock,
  records: Number(report.records),
  discrepancies: report.discrepancies.length,
  orders: report.kept.map((r) => r.details.orderRef),
  balance: String((await ledger.accountBooks(${MERCHANT}, card)).balance),
}, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
provider.destroy();
regulatorProvider.destroy();
`,
    );
    // The machine's Node 20 when it has one (the SDK claims Node 20), else this Node.
    const runtime = existsSync(OLD_NODE) ? OLD_NODE : process.execPath;
    const out = ok(sh(runtime, ["upload.mjs", node.url, REGULATOR_KEY, recorder.privateKey], app), `node upload.mjs (${runtime})`);
    const result = JSON.parse(out.trim().split("\n").pop()!) as Record<string, unknown>;
    expect(result).to.deep.include({ indexes: [1, 2], records: 2, discrepancies: 0, orders: ["GYM-1", "GYM-2"], hash: 32, balance: "295500" });
    console.log(`      ran under Node ${String(result.node)}`);
  });

  it("runs the README's first record as written", async function () {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const script = /### First record\n[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(script, "README: a js block under ### First record").to.be.a("string");
    const dir = join(app, "readme"); // a journal of its own: the other scripts' is for another ledger
    mkdirSync(dir);
    writeFileSync(join(dir, "first-record.mjs"), script!);
    const { ledger, recorder } = await deployWithMerchant();
    const env = { LEDGER: ledger, RPC_URL: node.url, REGULATOR_PUBLIC_KEY: publicKeyOf(REGULATOR_KEY), RECORDER_PRIVATE_KEY: recorder.privateKey };
    const out = ok(sh(existsSync(OLD_NODE) ? OLD_NODE : process.execPath, ["first-record.mjs"], dir, env), "node first-record.mjs");
    expect(out).to.match(/^record #1 in block \d+, tx 0x[0-9a-f]{64}\ncard holder's receipt: PL1:[A-Za-z0-9_-]{200,}\n$/);
    const reader = await RegulatorReader.open({ ledger, privateKey: REGULATOR_KEY, keepRecords: true }, provider);
    const report = await reader.read();
    expect(report.discrepancies).to.deep.equal([]);
    expect(report.kept!.map((r) => [r.details!.orderRef, r.amount])).to.deep.equal([["GYM-20261126-00042", 300_000n]]);
  });

  it("type-checks an app against the .d.ts under tsc --strict, module nodenext (and rejects a wrong one)", function () {
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", noEmit: true, skipLibCheck: false, types: ["node"] },
        include: ["app.ts", "wrong.ts"],
      }),
    );
    writeFileSync(
      join(app, "app.ts"),
      `import { JsonRpcProvider, Wallet } from "ethers";
import { RecordKind, RegulatorReader, Uploader, isError, type RecordDetails, type UploadedRecord } from "prepaid-ledger";
import { PrepaidLedger__factory, type PrepaidLedger } from "prepaid-ledger/abi";
import { packBatch, type PackedRecord } from "prepaid-ledger/codec";
import { sealSingle, type RecordDetails as CryptoDetails } from "prepaid-ledger/crypto";
import { sealBatch as sealInBrowser, type SealedBatch } from "prepaid-ledger/browser";

export async function first(provider: JsonRpcProvider, key: string, ledgerAddress: string): Promise<UploadedRecord[]> {
  const ledger: PrepaidLedger = PrepaidLedger__factory.connect(ledgerAddress, provider);
  const books = await ledger.accountBooks(101, "0x" + "11".repeat(32));
  const balance: bigint = books.balance;
  const uploader = await Uploader.open({ ledger: ledgerAddress, merchantId: 101, regulatorPublicKey: "0x04", journalPath: "j.jsonl" }, new Wallet(key, provider));
  const record: RecordDetails = { kind: RecordKind.TopUp, merchantId: 101, account: "0x" + "11".repeat(32), amount: balance, time: 0, orderRef: "A", memo: "" };
  const same: CryptoDetails = record;
  try {
    return await uploader.upload([same]);
  } catch (e) {
    if (isError(e, "RPC_ERROR")) return [];
    throw e;
  } finally {
    uploader.close();
  }
}
export const reader: typeof RegulatorReader.open = RegulatorReader.open;
export type Packed = PackedRecord;
export const codec = [packBatch, sealSingle] as const;
export const browser: (d: RecordDetails[], r: { publicKey: string; role: "regulator" }[]) => Promise<SealedBatch> = sealInBrowser;
`,
    );
    // The check can fail: wrong.ts uses the same declarations wrongly, in the same run (one
    // compilation, as it takes half a minute with the libraries' declarations checked too).
    writeFileSync(
      join(app, "wrong.ts"),
      `import { RecordKind, Uploader } from "prepaid-ledger";\nexport const kind: string = RecordKind.TopUp;\nexport const key: number = Uploader.recordKey;\n`,
    );
    const tsc = sh(process.execPath, [join(app, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], app);
    const errors = tsc.stdout.split("\n").filter((l) => /error TS/.test(l));
    expect(errors.map((l) => l.replace(/:.*/, "")), tsc.stdout).to.deep.equal(["wrong.ts(2,14)", "wrong.ts(3,14)"]);
    expect(tsc.status).to.equal(2);
  });

  it("runs `npx prepaid --help` from the project (the compiled CLI)", function () {
    const out = ok(sh("npx", ["--offline", "prepaid", "--help"], app), "npx prepaid --help");
    expect(out).to.include("prepaid: the regulator's workbench");
    if (existsSync(OLD_NODE) && Number(sh(OLD_NODE, ["-p", "process.versions.node.split('.')[0]"], app).stdout) < 22) {
      // On the machine's older Node it refuses with a message meant for an installed package.
      const old = sh(OLD_NODE, [join("node_modules", "prepaid-ledger", "bin", "prepaid.mjs"), "--help"], app);
      expect(old.status).to.equal(2);
      expect(old.stderr).to.include("prepaid needs Node.js 22.13 or newer").and.to.include("The prepaid-ledger SDK itself runs on Node 20");
    }
  });

  it("runs the merchant back-end example: killed mid-upload, restarted, then --follow until SIGTERM; every sale once", async function () {
    const { ledger, recorder } = await deployWithMerchant();

    const SALES = 120;
    const sale = (i: number) => ({
      order: `GYM-20261126-${String(i).padStart(5, "0")}`,
      type: i % 3 === 0 ? "topup" : "consume",
      card: `6200-0000-${String(Math.floor(i / 3)).padStart(4, "0")}`,
      amount: i % 3 === 0 ? 300_000 : 1_500,
      time: `2026-11-26T09:${String(i % 60).padStart(2, "0")}:00+08:00`,
      memo: i % 3 === 0 ? "monthly card" : "class",
    });
    writeFileSync(join(app, "sales.jsonl"), Array.from({ length: SALES }, (_, i) => JSON.stringify(sale(i)) + "\n").join(""));
    copyFileSync(join(root, "examples", "merchant-backend", "backend.mjs"), join(app, "backend.mjs"));
    const env = {
      PATH,
      RPC_URL: node.url,
      LEDGER: ledger,
      MERCHANT_ID: String(MERCHANT),
      REGULATOR_PUBLIC_KEY: publicKeyOf(REGULATOR_KEY),
      RECORDER_PRIVATE_KEY: recorder.privateKey,
      CARD_SECRET: "install test card secret",
      JOURNAL: "./journal/backend-merchant-101.jsonl",
      BATCH_SIZE: "10",
    };
    const runtime = existsSync(OLD_NODE) ? OLD_NODE : process.execPath;
    const uploadedLines = (r: Running) => r.output().split("\n").filter((l) => l.startsWith("uploaded ")).length;

    const first = startCommand(runtime, ["backend.mjs", "sales.jsonl"], { cwd: app, env });
    const deadline = Date.now() + 60_000;
    while (uploadedLines(first) < 3 && first.process.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(first.process.exitCode, `finished before it could be killed:\n${first.output()}`).to.equal(null);
    first.process.kill("SIGKILL");
    await first.stop();

    const second = startCommand(runtime, ["backend.mjs", "sales.jsonl"], { cwd: app, env });
    await new Promise<void>((r) => second.process.once("exit", () => r()));
    await second.stop();
    expect(second.process.exitCode, second.output()).to.equal(0);
    expect(second.output()).to.match(/resuming after ([1-9]\d*) sales already in the journal/);
    expect(second.output()).to.include(`stopped: ${SALES} sales uploaded`);

    // As a server: --follow uploads sales the tills append, and stops cleanly on SIGTERM.
    const MORE = 25;
    const server = startCommand(runtime, ["backend.mjs", "--follow", "sales.jsonl"], { cwd: app, env });
    await until(() => server.output().includes(`resuming after ${SALES} sales`), server);
    appendFileSync(join(app, "sales.jsonl"), Array.from({ length: MORE }, (_, i) => JSON.stringify(sale(SALES + i)) + "\n").join(""));
    await until(() => server.output().includes(`uploaded ${SALES + MORE}/${SALES + MORE} sales`), server);
    server.process.kill("SIGTERM");
    await server.stop();
    expect(server.process.exitCode, server.output()).to.equal(0);
    expect(server.output()).to.include(`stopped: ${SALES + MORE} sales uploaded`);

    const reader = await RegulatorReader.open({ ledger, privateKey: REGULATOR_KEY, keepRecords: true }, provider);
    const report = await reader.read();
    expect(report.discrepancies).to.deep.equal([]);
    expect(report.kept!.map((r) => r.details!.orderRef)).to.deep.equal(Array.from({ length: SALES + MORE }, (_, i) => sale(i).order));
  });
});
