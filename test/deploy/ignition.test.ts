import { mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";
import { Contract, ContractFactory, JsonRpcProvider, ZeroHash } from "ethers";

import { publicKeyOf } from "../../src/crypto/ecies.js";
import { PREPAID_LEDGER_ABI } from "../../src/ledger/abi.js";
import { startHardhatNode, startTs } from "../helpers/processes.js";

/**
 * `hardhat ignition deploy` as a user runs it (README "Deploy"): a real CLI process against a
 * real `hardhat node`, and the failures that must stop it before anything is sent.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = "node_modules/hardhat/dist/src/cli.js";
const MODULE = "ignition/modules/PrepaidLedger.ts";
const FUTURE_ID = "PrepaidLedgerModule#PrepaidLedger";
/** Hardhat's (and anvil's) well-known dev account 0: a test key, never a secret. */
const DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/** A merchant id no one else uses, so the script's journal file is this test's alone. */
const MERCHANT_ID = 3_141_592_653;
const REGULATOR_PUBLIC_KEY = publicKeyOf("0x" + "11".repeat(32));

/**
 * Every child runs with a private, empty Hardhat config directory (where hardhat-keystore keeps
 * keystore.json), so a developer's own keystore can neither answer a variable nor ask for its
 * password; and without HH_TEST (set by `hardhat test`), which would make the keystore report a
 * missing variable as a development-keystore miss rather than as a user sees it.
 */
const configHome = mkdtempSync(join(tmpdir(), "prepaid-ledger-ignition-"));
const isolated: NodeJS.ProcessEnv = { HH_TEST: undefined, XDG_CONFIG_HOME: configHome, HOME: configHome };

/** Runs the Hardhat CLI (stdin ignored: a prompt fails instead of waiting); resolves when it has exited. */
async function hardhat(args: string[], env: NodeJS.ProcessEnv = {}, ms = 150_000): Promise<{ code: number | null; output: string }> {
  const child = startTs(CLI, args, { ...isolated, ...env });
  // "close", not "exit": it comes after the last output has been read.
  const closed = new Promise<number | null>((resolve) => child.process.once("close", (code) => resolve(code)));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  const code = await Promise.race([closed, timedOut]);
  clearTimeout(timer);
  if (code === "timeout") {
    await child.stop();
    throw new Error(`hardhat ${args.join(" ")} did not finish in ${ms / 1000} s:\n${child.output()}`);
  }
  await child.stop();
  return { code, output: child.output() };
}

const deploy = (network: string, parameters: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  hardhat(["ignition", "deploy", MODULE, "--network", network, "--parameters", parameters, ...extra], env);

const deployedAddress = (deploymentId: string): string =>
  (JSON.parse(readFileSync(join(root, "ignition", "deployments", deploymentId, "deployed_addresses.json"), "utf8")) as Record<string, string>)[
    FUTURE_ID
  ];

describe("Ignition deployment (hardhat ignition deploy, as a user runs it)", function () {
  this.timeout(200_000);
  // test-*: .gitignore keeps these out of commits while the test runs.
  const deploymentId = `test-ignition-${process.pid}`;
  const placeholderId = `${deploymentId}-placeholder`;
  let node: Awaited<ReturnType<typeof startHardhatNode>>;
  let provider: JsonRpcProvider;
  let accounts: string[];
  let parameters: string;
  let first: { code: number | null; output: string };
  let journalFile: string | undefined;

  /** What would change if anything were sent: the block number and account 0's pending nonce. */
  const chainState = async () => ({
    block: await provider.send("eth_blockNumber", []),
    nonce: await provider.send("eth_getTransactionCount", [accounts[0], "pending"]),
  });

  before(async function () {
    node = await startHardhatNode();
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true });
    accounts = await provider.send("eth_accounts", []);
    parameters = join(configHome, "parameters.json");
    writeFileSync(parameters, JSON.stringify({ PrepaidLedgerModule: { admin: accounts[0], regulator: accounts[1], adminDelay: 0, recorderDelay: 3_600 } }));
    first = await deploy("localhost", parameters, ["--deployment-id", deploymentId], { LOCALHOST_RPC_URL: node.url });
  });

  after(async function () {
    provider?.destroy();
    await node?.stop();
    for (const id of [deploymentId, placeholderId, `${deploymentId}-evm`]) rmSync(join(root, "ignition", "deployments", id), { recursive: true, force: true });
    if (journalFile !== undefined) {
      rmSync(journalFile, { force: true });
      const dir = dirname(journalFile);
      if (readdirSync(dir).length === 0) rmdirSync(dir);
    }
    rmSync(configHome, { recursive: true, force: true });
  });

  describe("on a hardhat node (--network localhost)", function () {
    it("deploys from a parameters file: the ledger is at the journaled address, with its roles", async function () {
      expect(first.code, first.output).to.equal(0);
      const address = deployedAddress(deploymentId);
      expect(await provider.getCode(address)).to.not.equal("0x");
      const ledger = new Contract(address, PREPAID_LEDGER_ABI, provider);
      const regulatorRole: string = await ledger.REGULATOR_ROLE();
      expect(await ledger.hasRole(ZeroHash, accounts[0]), "admin").to.equal(true);
      expect(await ledger.hasRole(regulatorRole, accounts[1]), "regulator").to.equal(true);
      expect(await ledger.hasRole(regulatorRole, accounts[0]), "the deployer is no regulator").to.equal(false);
    });

    it("a second deploy is a no-op: same address, no transaction sent", async function () {
      const address = deployedAddress(deploymentId);
      const before = await chainState();
      const again = await deploy("localhost", parameters, ["--deployment-id", deploymentId], { LOCALHOST_RPC_URL: node.url });
      expect(again.code, again.output).to.equal(0);
      expect(again.output).to.include("Nothing new to deploy");
      expect(deployedAddress(deploymentId)).to.equal(address);
      expect(await chainState()).to.deep.equal(before);
    });

    it("CustodyModule: custody for the journaled ledger and the given token; the ledger admin attaches it", async function () {
      const ledgerAddress = deployedAddress(deploymentId);
      const admin = await provider.getSigner(accounts[0]);
      const artifact = JSON.parse(
        readFileSync(join(root, "artifacts", "contracts", "test", "PrepaidTestToken.sol", "PrepaidTestToken.json"), "utf8"),
      ) as { abi: []; bytecode: string };
      const token = await new ContractFactory(artifact.abi, artifact.bytecode, admin).deploy("Test fen", "tFEN");
      await token.waitForDeployment();
      const custodyParameters = join(configHome, "custody-parameters.json");
      const ledgerParameters = JSON.parse(readFileSync(parameters, "utf8")) as object;
      writeFileSync(
        custodyParameters,
        JSON.stringify({
          ...ledgerParameters,
          CustodyModule: { token: await token.getAddress(), admin: accounts[0], regulator: accounts[1], adminDelay: 0 },
        }),
      );
      const run = await hardhat(
        ["ignition", "deploy", "ignition/modules/Custody.ts", "--network", "localhost", "--parameters", custodyParameters, "--deployment-id", deploymentId],
        { LOCALHOST_RPC_URL: node.url },
      );
      expect(run.code, run.output).to.equal(0);
      const addresses = JSON.parse(
        readFileSync(join(root, "ignition", "deployments", deploymentId, "deployed_addresses.json"), "utf8"),
      ) as Record<string, string>;
      expect(addresses[FUTURE_ID], "the journaled ledger is reused").to.equal(ledgerAddress);
      const custodyAddress = addresses["CustodyModule#MerchantCustody"];
      const custody = new Contract(custodyAddress, ["function TOKEN() view returns (address)", "function LEDGER() view returns (address)"], provider);
      expect([await custody.TOKEN(), await custody.LEDGER()]).to.deep.equal([await token.getAddress(), ledgerAddress]);
      const ledger = new Contract(ledgerAddress, PREPAID_LEDGER_ABI, admin);
      expect(await ledger.custody(), "the module does not attach").to.equal("0x0000000000000000000000000000000000000000");
      await (await ledger.proposeCustody(custodyAddress)).wait();
      expect(await ledger.custody()).to.equal(custodyAddress);
    });

    describe("then scripts/testnet/first-record.ts", function () {
      const firstRecord = (env: NodeJS.ProcessEnv) =>
        hardhat(["run", "scripts/testnet/first-record.ts", "--network", "localhost"], {
          LOCALHOST_RPC_URL: node.url,
          LEDGER_ADDRESS: deployedAddress(deploymentId),
          MERCHANT_ID: String(MERCHANT_ID),
          REGULATOR_PUBLIC_KEY,
          ...env,
        });

      before(function () {
        const address = deployedAddress(deploymentId).toLowerCase();
        journalFile = join(root, "journal", `chain-31337-${address}-merchant-${MERCHANT_ID}.jsonl`);
        rmSync(journalFile, { force: true }); // left by an interrupted run against an earlier node
      });

      it("asks for REGULATOR_PUBLIC_KEY when it is missing", async function () {
        const run = await firstRecord({ REGULATOR_PUBLIC_KEY: undefined });
        expect(run.code, run.output).to.equal(1);
        expect(run.output).to.include("Set REGULATOR_PUBLIC_KEY");
      });

      it("says so when the first account does not hold REGULATOR_ROLE, and sends nothing", async function () {
        const before = await chainState();
        const run = await firstRecord({});
        expect(run.code, run.output).to.equal(1);
        expect(run.output.toLowerCase()).to.include(`account ${accounts[0]} does not hold regulator_role`);
        expect(await chainState()).to.deep.equal(before);
      });

      it("once the admin grants the role: registers the merchant and uploads one record, and a rerun sends nothing", async function () {
        const ledger = new Contract(deployedAddress(deploymentId), PREPAID_LEDGER_ABI, await provider.getSigner(accounts[0]));
        await (await ledger.grantRole(await ledger.REGULATOR_ROLE(), accounts[0])).wait();

        const run = await firstRecord({});
        expect(run.code, run.output).to.equal(0);
        expect(run.output).to.include(`Registered merchant ${MERCHANT_ID}`);
        expect(run.output).to.match(/recordIndex {2}1\b/);
        const [recordCount] = await ledger.chainHead();
        expect(recordCount).to.equal(1n);
        const txHash = /tx hash {6}(0x[0-9a-f]{64})/.exec(run.output)![1];
        expect((await provider.getTransactionReceipt(txHash))?.status).to.equal(1);

        const before = await chainState();
        const rerun = await firstRecord({});
        expect(rerun.code, rerun.output).to.equal(0);
        expect(rerun.output).to.include("nothing sent");
        expect(await chainState()).to.deep.equal(before);
        expect((await ledger.chainHead())[0]).to.equal(1n);
      });
    });

    it("a placeholder parameters file fails naming the placeholder, sends nothing; --reset deploys once it is filled in", async function () {
      const env = { LOCALHOST_RPC_URL: node.url };
      const before = await chainState();
      const placeholder = await deploy("localhost", "ignition/parameters/sepolia.json", ["--deployment-id", placeholderId], env);
      expect(placeholder.code, placeholder.output).to.not.equal(0);
      // Ignition does not check address parameters; ethers refuses to encode the constructor call.
      expect(placeholder.output).to.include('value="0xYOUR_ADMIN_ADDRESS"');
      expect(placeholder.output).to.include('argument="admin"');
      expect(await chainState()).to.deep.equal(before);

      // Ignition journaled the future with the placeholder: the filled-in file alone is refused...
      const filledIn = await deploy("localhost", parameters, ["--deployment-id", placeholderId], env);
      expect(filledIn.code, filledIn.output).to.not.equal(0);
      expect(filledIn.output).to.include("reconciliation failed");
      expect(await chainState()).to.deep.equal(before);
      // ...until --reset wipes that journal.
      const reset = await deploy("localhost", parameters, ["--deployment-id", placeholderId, "--reset"], env);
      expect(reset.code, reset.output).to.equal(0);
      expect(await provider.getCode(deployedAddress(placeholderId))).to.not.equal("0x");
    });
  });

  describe("stops before anything is sent", function () {
    it("when a secret is missing (--network sepolia): names the variable", async function () {
      const run = await deploy("sepolia", "ignition/parameters/sepolia.json", [], {
        SEPOLIA_RPC_URL: undefined,
        SEPOLIA_PRIVATE_KEY: undefined,
      });
      expect(run.code, run.output).to.not.equal(0);
      expect(run.output).to.include("SEPOLIA_RPC_URL");
      expect(run.output).to.include("not found");
    });

    it("when the chain id is wrong (--network evm, EVM_CHAIN_ID=5 against chain 31337): names both ids", async function () {
      const before = await chainState();
      const run = await deploy("evm", parameters, ["--deployment-id", `${deploymentId}-evm`], {
        EVM_RPC_URL: node.url,
        EVM_PRIVATE_KEY: DEV_KEY_0,
        EVM_CHAIN_ID: "5",
        // Past the confirmation prompt, so only the chain id check can stop the deploy.
        HARDHAT_IGNITION_CONFIRM_DEPLOYMENT: "true",
      });
      expect(run.code, run.output).to.not.equal(0);
      expect(run.output).to.match(/chain id "5", but connected to a chain with id "31337"/);
      expect(await chainState()).to.deep.equal(before);
    });
  });

  it("parameter files: anvil's dev accounts; placeholders for sepolia and besu", function () {
    const read = (name: string) => JSON.parse(readFileSync(join(root, "ignition", "parameters", `${name}.json`), "utf8")) as unknown;
    expect(read("anvil")).to.deep.equal({
      PrepaidLedgerModule: {
        admin: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        regulator: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        adminDelay: 0,
        recorderDelay: 3_600,
      },
    });
    for (const name of ["sepolia", "besu"]) {
      expect(read(name), name).to.deep.equal({
        PrepaidLedgerModule: {
          admin: "0xYOUR_ADMIN_ADDRESS",
          regulator: "0xYOUR_REGULATOR_ADDRESS",
          adminDelay: 172_800,
          recorderDelay: 259_200,
        },
        CustodyModule: {
          token: "0xYOUR_TOKEN_ADDRESS",
          admin: "0xYOUR_ADMIN_ADDRESS",
          regulator: "0xYOUR_REGULATOR_ADDRESS",
          adminDelay: 172_800,
        },
      });
    }
  });
});
