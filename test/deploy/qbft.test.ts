import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { JsonRpcProvider, concat, encodeRlp, getAddress, toBeHex, zeroPadValue } from "ethers";
import fc from "fast-check";

import { qbftHealth } from "../../src/deploy/health.js";
import {
  QBFT_MIX_HASH,
  decodeQbftExtraData,
  describeFaultTolerance,
  encodeQbftExtraData,
  faultTolerance,
  qbftGenesis,
  quorum,
  sortValidators,
  type QbftExtraData,
} from "../../src/deploy/qbft.js";
import { isError } from "../../src/errors.js";
import { parseGenesisArgs, runGenesis } from "../../scripts/qbft/genesis.js";
import { parseHealthArgs, runHealth } from "../../scripts/qbft/health.js";
import { freePort, startTs } from "../helpers/processes.js";

/** Runs `fn` and returns the PrepaidLedgerError it throws, after checking its code. */
async function caught(fn: () => unknown, code: string): Promise<{ code: string; details: Record<string, unknown>; message: string; retryable: boolean }> {
  try {
    await fn();
  } catch (e) {
    expect(isError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code, String(e)).to.equal(code);
    return e as never;
  }
  return expect.fail(`expected ${code}`);
}

/** Waits for a process started by `startTs` to exit (15 s at most). */
async function exited(p: ReturnType<typeof startTs>): Promise<{ code: number | null; output: string }> {
  const deadline = Date.now() + 15_000;
  while (p.process.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await p.stop();
  return { code: p.process.exitCode, output: p.output() };
}

/** The EIP-55 form of `address` with one letter's case flipped: a checksum typo. */
function badChecksum(address: string): string {
  const good = getAddress(address);
  const at = good.slice(2).search(/[a-fA-F]/) + 2;
  const c = good[at];
  return good.slice(0, at) + (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) + good.slice(at + 1);
}

const issuePaths = (e: { details: Record<string, unknown> }) =>
  (e.details.issues as { path: string }[]).map((i) => i.path);

// ---------------------------------------------------------------------------------------------
// Published vectors. Each is copied byte for byte from where its comment says.
// ---------------------------------------------------------------------------------------------

const ZERO_VANITY = "0x" + "00".repeat(32);

const VECTORS: { name: string; source: string; hex: string; decoded: QbftExtraData }[] = [
  {
    // Besu docs, "Configure QBFT consensus" → Genesis file → "Block header validator selection"
    // example genesis, its extraData (4 validators, listed as published, not sorted):
    // https://besu.hyperledger.org/private-networks/how-to/configure/consensus/qbft#genesis-file
    // (hyperledger/besu-docs, docs/private-networks/how-to/configure/consensus/qbft.md,
    // commit 110d7680c87c34864ca2a80df0f210e2bde934b7).
    name: "Besu docs: QBFT genesis file, 4 validators",
    source: "besu-docs qbft.md#genesis-file",
    hex:
      "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f8549464a702e6263b7297a96638cac6ae65e6541f4169943923390ad55e90c237593b3b0e401f3b08a0318594aefdb9a738c9f433e5b6b212a6d62f6370c2f69294c7eeb9a4e00ce683cf93039b212648e01c6c6b78c080c0",
    decoded: {
      vanity: ZERO_VANITY,
      validators: [
        "0x64a702e6263b7297a96638cac6ae65e6541f4169",
        "0x3923390ad55e90c237593b3b0e401f3b08a03185",
        "0xaefdb9a738c9f433e5b6b212a6d62f6370c2f692",
        "0xc7eeb9a4e00ce683cf93039b212648e01c6c6b78",
      ],
      vote: undefined,
      round: 0,
      seals: [],
    },
  },
  {
    // Besu docs, same page, "Contract validator selection" example genesis: no validators in
    // extraData (they live in the validator contract's storage).
    // https://besu.hyperledger.org/private-networks/how-to/configure/consensus/qbft#genesis-file
    // (hyperledger/besu-docs, docs/private-networks/how-to/configure/consensus/qbft.md,
    // commit 110d7680c87c34864ca2a80df0f210e2bde934b7).
    name: "Besu docs: QBFT genesis file, contract validator selection (no validators)",
    source: "besu-docs qbft.md#genesis-file",
    hex: "0xe5a00000000000000000000000000000000000000000000000000000000000000000c0c080c0",
    decoded: { vanity: ZERO_VANITY, validators: [], vote: undefined, round: 0, seals: [] },
  },
  {
    // Besu docs, same page, "Generate extra data": `besu rlp encode --from=toEncode.json
    // --type=QBFT_EXTRA_DATA`, the toEncode.json list and the "RLP encoded data" it prints.
    // https://besu.hyperledger.org/private-networks/how-to/configure/consensus/qbft#generate-extra-data
    // (hyperledger/besu-docs, docs/private-networks/how-to/configure/consensus/qbft.md,
    // commit 110d7680c87c34864ca2a80df0f210e2bde934b7). The page says the list is "in ascending
    // order"; it is not, and the published output keeps the order given.
    name: "Besu docs: besu rlp encode --type=QBFT_EXTRA_DATA example",
    source: "besu-docs qbft.md#generate-extra-data",
    hex:
      "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f854944592c8e45706cc08b8f44b11e43cba0cfc5892cb9406e23768a0f59cf365e18c2e0c89e151bcdedc7094c5327f96ee02d7bcbc1bf1236b8c15148971e1de94ab5e7f4061c605820d3744227eed91ff8e2c8908c080c0",
    decoded: {
      vanity: ZERO_VANITY,
      validators: [
        "0x4592c8e45706cc08b8f44b11e43cba0cfc5892cb",
        "0x06e23768a0f59cf365e18c2e0c89e151bcdedc70",
        "0xc5327f96ee02d7bcbc1bf1236b8c15148971e1de",
        "0xab5e7f4061c605820d3744227eed91ff8e2c8908",
      ],
      vote: undefined,
      round: 0,
      seals: [],
    },
  },
  {
    // Besu's own codec test: RAW_HEX_ENCODING_STRING in hyperledger/besu,
    // consensus/qbft/src/test/java/org/hyperledger/besu/consensus/qbft/QbftExtraDataCodecTest.java
    // (same at commits 0412fd797ece9828471214ddd11c80268753eeac and
    // 2fce298ab479b09682f0d047e18041e8afc8867a). Its getDecodedExtraDataForRawHexEncodingString():
    // vanity = createNonEmptyVanityData() (bytes 1..32), validators = [Address "1", Address "2"],
    // vote = Vote.authVote(Address "1") (add), round = 0x00FEDCBA, seals =
    // [createSignature(r=1, s=10, recId=0), createSignature(r=10, s=1, recId=0)], each r ‖ s ‖ v.
    name: "Besu QbftExtraDataCodecTest RAW_HEX_ENCODING_STRING (vote, round, seals)",
    source: "hyperledger/besu QbftExtraDataCodecTest.java",
    hex:
      "0xf8f0a00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20ea940000000000000000" +
      "000000000000000000000001940000000000000000000000000000000000000002d7940000000000000000" +
      "00000000000000000000000181ff83fedcbaf886b841000000000000000000000000000000000000000000" +
      "0000000000000000000001000000000000000000000000000000000000000000000000000000000000000a" +
      "00b841000000000000000000000000000000000000000000000000000000000000000a0000000000000000" +
      "00000000000000000000000000000000000000000000000100",
    decoded: {
      vanity: "0x" + Array.from({ length: 32 }, (_, i) => toBeHex(i + 1, 1).slice(2)).join(""),
      validators: [zeroPadValue("0x01", 20), zeroPadValue("0x02", 20)],
      vote: { recipient: zeroPadValue("0x01", 20), add: true },
      round: 0x00fedcba,
      seals: [
        concat([zeroPadValue("0x01", 32), zeroPadValue("0x0a", 32), "0x00"]),
        concat([zeroPadValue("0x0a", 32), zeroPadValue("0x01", 32), "0x00"]),
      ],
    },
  },
];

describe("deploy/qbft", function () {
  describe("extraData codec", function () {
    for (const v of VECTORS) {
      describe(v.name, function () {
        it("encodes to the published hex byte for byte", function () {
          expect(encodeQbftExtraData(v.decoded)).to.equal(v.hex);
        });

        it("decodes the published hex to the published fields", function () {
          expect(decodeQbftExtraData(v.hex)).to.deep.equal(v.decoded);
        });
      });
    }

    it("fills the genesis defaults: zero vanity, no vote, round 0, no seals", function () {
      const { validators } = VECTORS[2].decoded;
      expect(encodeQbftExtraData({ validators })).to.equal(VECTORS[2].hex);
    });

    it("encodes a removal vote as the empty string, as Besu's encoder does", function () {
      const recipient = zeroPadValue("0x01", 20);
      const hex = encodeQbftExtraData({ validators: [], vote: { recipient, add: false } });
      // vote = RLP([recipient, ""]) = d6 94 <20 bytes> 80
      expect(hex).to.include("d694" + recipient.slice(2) + "80");
      expect(decodeQbftExtraData(hex).vote).to.deep.equal({ recipient, add: false });
    });

    it("round-trips any well-formed extraData", function () {
      const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => "0x" + Buffer.from(b).toString("hex"));
      const extra = fc.record({
        vanity: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => "0x" + Buffer.from(b).toString("hex")),
        validators: fc.uniqueArray(address, { maxLength: 12 }),
        vote: fc.option(fc.record({ recipient: address, add: fc.boolean() }), { nil: undefined }),
        round: fc.integer({ min: 0, max: 0x7fffffff }),
        seals: fc.array(
          fc.uint8Array({ minLength: 65, maxLength: 65 }).map((b) => "0x" + Buffer.from(b).toString("hex")),
          { maxLength: 5 },
        ),
      });
      fc.assert(
        fc.property(extra, (x) => {
          const hex = encodeQbftExtraData(x);
          expect(decodeQbftExtraData(hex)).to.deep.equal(x);
          expect(encodeQbftExtraData(decodeQbftExtraData(hex))).to.equal(hex);
        }),
      );
    });

    describe("when the input is wrong", function () {
      const four = VECTORS[0].decoded.validators;

      it("refuses a bad address, a repeated validator, a bad checksum", async function () {
        expect((await caught(() => encodeQbftExtraData({ validators: ["0x1234"] }), "INVALID_ARGUMENT")).details).to.include({
          field: "validators[0]",
        });
        const twice = await caught(() => encodeQbftExtraData({ validators: [four[0], four[1], four[0].toUpperCase().replace("0X", "0x")] }), "INVALID_ARGUMENT");
        expect(twice.details).to.deep.include({ address: four[0], indexes: [0, 2] });
        await caught(() => encodeQbftExtraData({ validators: [badChecksum(four[1])] }), "INVALID_ARGUMENT");
        await caught(() => encodeQbftExtraData({ validators: [], vote: { recipient: "0x01", add: true } }), "INVALID_ARGUMENT");
      });

      it("refuses a vanity not 32 bytes, a seal not 65 bytes, a round out of range", async function () {
        await caught(() => encodeQbftExtraData({ validators: four, vanity: "0x00" }), "INVALID_ARGUMENT");
        await caught(() => encodeQbftExtraData({ validators: four, seals: [new Uint8Array(64)] }), "INVALID_ARGUMENT");
        for (const round of [-1, 1.5, 2 ** 31, Number.NaN]) {
          await caught(() => encodeQbftExtraData({ validators: four, round }), "INVALID_ARGUMENT");
        }
      });
    });

    describe("when the bytes are malformed", function () {
      const rlp = VECTORS[3].hex;
      const Z32 = ZERO_VANITY;
      const A = "0x" + "11".repeat(20);
      const malformed: [string, string][] = [
        ["empty", "0x"],
        ["not hex", "0xzz"],
        ["truncated", rlp.slice(0, -2)],
        ["trailing bytes", rlp + "00"],
        ["a string, not a list", encodeRlp("0x010203")],
        ["four items", encodeRlp([Z32, [], [], "0x"])],
        ["six items", encodeRlp([Z32, [], [], "0x", [], []])],
        ["a 31-byte vanity", encodeRlp(["0x" + "00".repeat(31), [], [], "0x", []])],
        ["validators as bytes", encodeRlp([Z32, "0x", [], "0x", []])],
        ["a 19-byte validator", encodeRlp([Z32, ["0x" + "11".repeat(19)], [], "0x", []])],
        ["a vote of one item", encodeRlp([Z32, [], [A], "0x", []])],
        // Besu's incorrectVoteTypeThrowsException: vote byte 0xAA
        ["an unknown vote type", encodeRlp([Z32, [], [A, "0xaa"], "0x", []])],
        // Besu's incorrectlyEncodedRoundThrowsRlpException: round 0x00DCBA (a leading zero)
        ["a round with a leading zero", encodeRlp([Z32, [], [], "0x00dcba", []])],
        ["a 5-byte round", encodeRlp([Z32, [], [], "0x0100000000", []])],
        ["a round over 2^31 - 1", encodeRlp([Z32, [], [], "0x80000000", []])],
        ["a round as a list", encodeRlp([Z32, [], [], [], []])],
        ["a 64-byte seal", encodeRlp([Z32, [], [], "0x", ["0x" + "00".repeat(64)]])],
        // RLP that decodes, but not as Besu's strict reader accepts it:
        ["a list length in long form", "0xf825a0" + "00".repeat(32) + "c0c080c0"],
        ["a single byte written long", "0xe6a0" + "00".repeat(32) + "c0c08105c0"],
      ];
      for (const [what, hex] of malformed) {
        it(`refuses ${what}`, async function () {
          const e = await caught(() => decodeQbftExtraData(hex), "MALFORMED_DATA");
          // Each case fails for its own reason, not because the test's bytes are not RLP.
          if (!["truncated", "trailing bytes"].includes(what)) expect(e.message).not.to.include("not RLP");
        });
      }
    });
  });

  describe("genesis", function () {
    const validators = VECTORS[0].decoded.validators; // unsorted, as Besu's docs publish them
    const sorted = [...validators].sort();

    it("lists the validators sorted ascending, whatever the input order", function () {
      expect(sortValidators(validators)).to.deep.equal(sorted);
      fc.assert(
        fc.property(fc.shuffledSubarray(validators, { minLength: 4, maxLength: 4 }), (order) => {
          const genesis = qbftGenesis({ chainId: 1337, validators: order });
          expect(decodeQbftExtraData(genesis.extraData).validators).to.deep.equal(sorted);
        }),
      );
      const mixedCase = validators.map((v) => getAddress(v));
      expect(qbftGenesis({ chainId: 1, validators: mixedCase }).extraData).to.equal(encodeQbftExtraData({ validators: sorted }));
    });

    it("writes every field Besu's QBFT genesis has", function () {
      const admin = "0x" + "aa".repeat(20);
      const genesis = qbftGenesis({
        chainId: 1337,
        validators,
        evmVersion: "london",
        alloc: { [admin]: 10n ** 21n, ["0x" + "bb".repeat(20)]: "0x10", ["0x" + "cc".repeat(20)]: "1000" },
      });
      expect(genesis.config).to.deep.equal({
        chainId: 1337,
        homesteadBlock: 0,
        eip150Block: 0,
        eip155Block: 0,
        eip158Block: 0,
        byzantiumBlock: 0,
        constantinopleBlock: 0,
        petersburgBlock: 0,
        istanbulBlock: 0,
        muirGlacierBlock: 0,
        berlinBlock: 0,
        londonBlock: 0,
        qbft: { blockperiodseconds: 5, epochlength: 30000, requesttimeoutseconds: 10 },
      });
      expect(genesis).to.deep.include({
        nonce: "0x0",
        timestamp: "0x0",
        gasLimit: "0x1c9c380",
        difficulty: "0x1",
        mixHash: QBFT_MIX_HASH,
        coinbase: "0x0000000000000000000000000000000000000000",
        number: "0x0",
        gasUsed: "0x0",
        parentHash: ZERO_VANITY,
      });
      expect(genesis.mixHash).to.equal("0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365");
      expect(genesis.alloc).to.deep.equal({
        ["aa".repeat(20)]: { balance: "0x3635c9adc5dea00000" },
        ["bb".repeat(20)]: { balance: "0x10" },
        ["cc".repeat(20)]: { balance: "0x3e8" },
      });
      expect(decodeQbftExtraData(genesis.extraData)).to.deep.equal({
        vanity: ZERO_VANITY,
        validators: sorted,
        vote: undefined,
        round: 0,
        seals: [],
      });
    });

    it("adds the timestamped forks for shanghai and cancun, none for paris", function () {
      const forks = (evmVersion: "london" | "paris" | "shanghai" | "cancun") => {
        const { config } = qbftGenesis({ chainId: 7, validators, evmVersion });
        return Object.keys(config).filter((k) => k.endsWith("Time"));
      };
      expect(forks("london")).to.deep.equal([]);
      expect(forks("paris")).to.deep.equal([]);
      expect(forks("shanghai")).to.deep.equal(["shanghaiTime"]);
      expect(forks("cancun")).to.deep.equal(["shanghaiTime", "cancunTime"]);
      const cancun = qbftGenesis({ chainId: 7, validators, evmVersion: "cancun" }).config;
      expect([cancun.londonBlock, cancun.shanghaiTime, cancun.cancunTime]).to.deep.equal([0, 0, 0]);
    });

    it("takes the QBFT timings and gas limit given", function () {
      const genesis = qbftGenesis({
        chainId: 2024,
        validators,
        blockPeriodSeconds: 2,
        epochLength: 100,
        requestTimeoutSeconds: 4,
        gasLimit: "0x29b92700",
      });
      expect(genesis.config.qbft).to.deep.equal({ blockperiodseconds: 2, epochlength: 100, requesttimeoutseconds: 4 });
      expect(genesis.gasLimit).to.equal("0x29b92700");
    });

    describe("when the options are wrong", function () {
      it("reports every wrong field by path", async function () {
        const e = await caught(
          () =>
            qbftGenesis({
              chainId: 0,
              validators: [validators[0], "0x1234"],
              evmVersion: "prague" as never,
              blockPeriodSeconds: -1,
              alloc: { "0xnot-an-address": "1" },
              extra: true,
            } as never),
          "INVALID_CONFIG",
        );
        expect(issuePaths(e)).to.include.members(["chainId", "validators.1", "evmVersion", "blockPeriodSeconds", "alloc.0xnot-an-address", "(root)"]);
      });

      it("refuses a repeated validator, naming the repeat", async function () {
        const e = await caught(
          () => qbftGenesis({ chainId: 1, validators: [validators[0], validators[1], getAddress(validators[0])] }),
          "INVALID_CONFIG",
        );
        expect(e.details.issues).to.deep.equal([{ path: "validators.2", message: "duplicate of validators.0" }]);
      });

      it("refuses no validators, a bad checksum, an unknown EVM version, a negative block period", async function () {
        expect(issuePaths(await caught(() => qbftGenesis({ chainId: 1, validators: [] }), "INVALID_CONFIG"))).to.deep.equal(["validators"]);
        const typo = badChecksum(validators[1]);
        expect(issuePaths(await caught(() => qbftGenesis({ chainId: 1, validators: [typo] }), "INVALID_CONFIG"))).to.deep.equal(["validators.0"]);
        expect(
          issuePaths(await caught(() => qbftGenesis({ chainId: 1, validators, evmVersion: "osaka" as never }), "INVALID_CONFIG")),
        ).to.deep.equal(["evmVersion"]);
        expect(
          issuePaths(await caught(() => qbftGenesis({ chainId: 1, validators, blockPeriodSeconds: -5 }), "INVALID_CONFIG")),
        ).to.deep.equal(["blockPeriodSeconds"]);
      });
    });
  });

  describe("fault tolerance", function () {
    it("matches f = floor((N - 1) / 3) and Besu's quorum ceil(2N / 3) for N = 1..10", function () {
      const table = Array.from({ length: 10 }, (_, i) => i + 1).map((n) => [n, faultTolerance(n), quorum(n)]);
      expect(table).to.deep.equal([
        [1, 0, 1],
        [2, 0, 2],
        [3, 0, 2],
        [4, 1, 3],
        [5, 1, 4],
        [6, 1, 4],
        [7, 2, 5],
        [8, 2, 6],
        [9, 2, 6],
        [10, 3, 7],
      ]);
      for (const [n, f] of table) expect(f).to.equal(Math.floor((n - 1) / 3));
    });

    it("says what 4 and 7 validators survive", function () {
      expect(describeFaultTolerance(4).message).to.equal("4 validators: tolerates 1 faulty or offline; the chain stalls if 2 fail");
      expect(describeFaultTolerance(7).message).to.equal("7 validators: tolerates 2 faulty or offline; the chain stalls if 3 fail");
      // Six validators need 4 signatures: two may be offline, but only one may lie.
      expect(describeFaultTolerance(6).message).to.equal("6 validators: tolerates 1 faulty, or 2 offline; the chain stalls if 3 fail");
      expect(describeFaultTolerance(1).message).to.equal("1 validator: tolerates 0 faulty or offline; the chain stalls if 1 fails");
    });

    it("refuses a count that is not a positive integer", async function () {
      for (const n of [0, -1, 2.5]) {
        await caught(() => faultTolerance(n), "INVALID_ARGUMENT");
        await caught(() => quorum(n), "INVALID_ARGUMENT");
      }
    });
  });

  describe("health", function () {
    this.timeout(20_000);
    const FOUR = sorted(4);
    const SEVEN = sorted(7);

    function sorted(n: number): string[] {
      return Array.from({ length: n }, (_, i) => zeroPadValue(toBeHex(0x1000 + i), 20));
    }

    type Answer = { result: unknown } | { error: { code: number; message: string } } | "hang";
    interface Stub {
      url: string;
      calls: { method: string; params: unknown[] }[];
      close(): Promise<void>;
    }

    /** A JSON-RPC server on 127.0.0.1 answering each method with `answer(method, params)`. */
    async function startStub(answer: (method: string, params: unknown[]) => Answer): Promise<Stub> {
      const port = await freePort();
      const calls: Stub["calls"] = [];
      const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
        let body = "";
        req.on("data", (d: Buffer) => (body += d.toString()));
        req.on("end", () => {
          const request = JSON.parse(body) as { id: number; method: string; params: unknown[] };
          calls.push({ method: request.method, params: request.params });
          const a = answer(request.method, request.params);
          if (a === "hang") return;
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ jsonrpc: "2.0", id: request.id, ...a }));
        });
      });
      await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
      return {
        url: `http://127.0.0.1:${port}`,
        calls,
        close: () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
    }

    /** A Besu QBFT node at block `head` with `validators`. */
    const besu = (validators: string[], head = 0x2a) => (method: string): Answer => {
      if (method === "eth_chainId") return { result: "0x539" };
      if (method === "eth_blockNumber") return { result: toBeHex(head) };
      if (method === "qbft_getValidatorsByBlockNumber") return { result: validators };
      return { error: { code: -32601, message: "Method not found" } };
    };

    /** Any Ethereum node without the QBFT API (geth, Hardhat, Besu with the API off). */
    const notQbft = (code: number, message: string) => (method: string): Answer =>
      method.startsWith("qbft_") ? { error: { code, message } } : besu([])(method);

    const stubs: Stub[] = [];
    async function stub(answer: (method: string, params: unknown[]) => Answer): Promise<Stub> {
      const s = await startStub(answer);
      stubs.push(s);
      return s;
    }
    afterEach(async function () {
      await Promise.all(stubs.splice(0).map((s) => s.close()));
    });

    it("reports 4 validators at the latest block, pinned by number", async function () {
      const s = await stub(besu(FOUR));
      const health = await qbftHealth(s.url);
      expect(health).to.deep.equal({
        blockNumber: 42,
        validators: FOUR,
        count: 4,
        faultTolerance: 1,
        quorum: 3,
        message: "4 validators: tolerates 1 faulty or offline; the chain stalls if 2 fail",
      });
      expect(s.calls).to.deep.equal([
        { method: "eth_blockNumber", params: [] },
        { method: "qbft_getValidatorsByBlockNumber", params: ["0x2a"] },
      ]);
    });

    it("reports 7 validators at a given block, through any provider with send()", async function () {
      const s = await stub(besu(SEVEN.map((v) => getAddress(v))));
      const provider = new JsonRpcProvider(s.url, 1337, { staticNetwork: true });
      try {
        const health = await qbftHealth(provider, 100);
        expect(health).to.deep.include({ blockNumber: 100, count: 7, faultTolerance: 2, quorum: 5 });
        expect(health.validators).to.deep.equal(SEVEN);
        expect(health.message).to.equal("7 validators: tolerates 2 faulty or offline; the chain stalls if 3 fail");
        expect(s.calls.map((c) => c.method)).to.deep.equal(["qbft_getValidatorsByBlockNumber"]);
        expect(s.calls[0].params).to.deep.equal(["0x64"]);
      } finally {
        provider.destroy();
      }
    });

    it("says INVALID_CONFIG when the node does not serve the QBFT API", async function () {
      const s = await stub(notQbft(-32601, "Method not found"));
      const e = await caught(() => qbftHealth(s.url), "INVALID_CONFIG");
      expect(e.message).to.include("not a Besu QBFT node, or its QBFT API is not enabled");
      expect(e.details).to.include({ method: "qbft_getValidatorsByBlockNumber", rpcCode: -32601 });
      expect(e.retryable).to.equal(false);

      // Besu with the API left out of --rpc-http-api answers -32604 "Method not enabled".
      const off = await stub(notQbft(-32604, "Method not enabled"));
      expect((await caught(() => qbftHealth(off.url), "INVALID_CONFIG")).details).to.include({ rpcCode: -32604 });

      // The same through ethers, which wraps the JSON-RPC error in its own.
      const provider = new JsonRpcProvider(s.url, 1337, { staticNetwork: true });
      try {
        await caught(() => qbftHealth(provider, "latest"), "INVALID_CONFIG");
      } finally {
        provider.destroy();
      }
    });

    it("says INVALID_CONFIG when the endpoint is not an Ethereum node at all", async function () {
      const s = await stub(() => ({ error: { code: -32601, message: "Method not found" } }));
      const e = await caught(() => qbftHealth(s.url), "INVALID_CONFIG");
      expect(e.details).to.include({ method: "eth_blockNumber" });
    });

    it("says RPC_ERROR when nothing listens and TIMEOUT when the node does not answer in time, both retryable", async function () {
      const port = await freePort();
      const e = await caught(() => qbftHealth(`http://127.0.0.1:${port}`), "RPC_ERROR");
      expect(e.retryable).to.equal(true);

      const s = await stub(() => "hang");
      const slow = await caught(() => qbftHealth(s.url, "latest", { timeoutMs: 200 }), "TIMEOUT");
      expect(slow.details).to.include({ timeoutMs: 200 });
      expect(slow.retryable).to.equal(true);
    });

    it("says RPC_ERROR for a failing node and MALFORMED_DATA for an answer that is not validators", async function () {
      const failing = await stub(() => ({ error: { code: -32603, message: "Internal error" } }));
      expect((await caught(() => qbftHealth(failing.url), "RPC_ERROR")).retryable).to.equal(true);
      const odd = await stub((method) => (method === "eth_blockNumber" ? { result: "0x1" } : { result: ["0x12"] }));
      await caught(() => qbftHealth(odd.url), "MALFORMED_DATA");
      const none = await stub(besu([]));
      await caught(() => qbftHealth(none.url), "MALFORMED_DATA");
    });

    it("refuses a bad URL or block", async function () {
      await caught(() => qbftHealth("not a url"), "INVALID_ARGUMENT");
      await caught(() => qbftHealth("ftp://127.0.0.1/"), "INVALID_ARGUMENT");
      await caught(() => qbftHealth("http://127.0.0.1:1", -1), "INVALID_ARGUMENT");
      await caught(() => qbftHealth("http://127.0.0.1:1", "pending"), "INVALID_ARGUMENT");
    });

    describe("scripts/qbft/health.ts", function () {
      it("prints the health line and exits 0", async function () {
        const s = await stub(besu(FOUR));
        const out: string[] = [];
        const err: string[] = [];
        expect(await runHealth([s.url], (l) => out.push(l), (l) => err.push(l))).to.equal(0);
        expect(out[0]).to.equal("block 42: 4 validators: tolerates 1 faulty or offline; the chain stalls if 2 fail (quorum 3)");
        expect(out.slice(1)).to.deep.equal(FOUR.map((v) => `  ${v}`));
        expect(err).to.deep.equal([]);
      });

      it("exits 2 with the error's message", async function () {
        const port = await freePort();
        const err: string[] = [];
        expect(await runHealth([`http://127.0.0.1:${port}`], () => {}, (l) => err.push(l))).to.equal(2);
        expect(err.join("\n")).to.include("[RPC_ERROR]");
        const s = await stub(notQbft(-32601, "Method not found"));
        expect(await runHealth([s.url], () => {}, (l) => err.push(l))).to.equal(2);
        expect(err.join("\n")).to.include("[INVALID_CONFIG]");
      });

      it("parses its arguments", async function () {
        expect(parseHealthArgs(["http://x:8545", "--block", "7", "--timeout", "500"])).to.deep.equal({
          url: "http://x:8545",
          blockTag: "7",
          timeoutMs: 500,
        });
        await caught(() => parseHealthArgs([]), "INVALID_ARGUMENT");
        await caught(() => parseHealthArgs(["http://x", "--bogus"]), "INVALID_ARGUMENT");
        await caught(() => parseHealthArgs(["http://x", "--timeout", "0"]), "INVALID_ARGUMENT");
      });

      it("runs as a command: exit 0 against a QBFT node, 2 against nothing", async function () {
        const s = await stub(besu(SEVEN));
        const ok = await exited(startTs("scripts/qbft/health.ts", [s.url]));
        expect(ok.code, ok.output).to.equal(0);
        expect(ok.output).to.include("7 validators: tolerates 2 faulty or offline; the chain stalls if 3 fail");
        const port = await freePort();
        const down = await exited(startTs("scripts/qbft/health.ts", [`http://127.0.0.1:${port}`]));
        expect(down.code, down.output).to.equal(2);
        expect(down.output).to.include("could not be reached");
      });
    });
  });

  describe("scripts/qbft/genesis.ts", function () {
    const validators = VECTORS[2].decoded.validators;
    let dir: string;
    beforeEach(function () {
      dir = mkdtempSync(join(tmpdir(), "qbft-genesis-"));
    });
    afterEach(function () {
      rmSync(dir, { recursive: true, force: true });
    });

    it("writes the genesis file and prints the Hardhat entry and the fault line", function () {
      const out = join(dir, "genesis.json");
      const lines: string[] = [];
      const result = runGenesis(
        [
          "--validators",
          validators.join(","),
          "--chain-id",
          "1337",
          "--evm",
          "shanghai",
          "--out",
          out,
          "--alloc",
          `0x${"aa".repeat(20)}=1000000000000000000000,0x${"bb".repeat(20)}=0x10`,
          "--url",
          "http://10.0.0.5:8545",
        ],
        (l) => lines.push(l),
      );
      const written = JSON.parse(readFileSync(out, "utf8")) as typeof result.genesis;
      expect(written).to.deep.equal(result.genesis);
      expect(decodeQbftExtraData(written.extraData).validators).to.deep.equal([...validators].sort());
      expect(written.config).to.include({ chainId: 1337, londonBlock: 0, shanghaiTime: 0 });
      expect(written.alloc).to.deep.equal({
        ["aa".repeat(20)]: { balance: "0x3635c9adc5dea00000" },
        ["bb".repeat(20)]: { balance: "0x10" },
      });
      const printed = lines.join("\n");
      expect(printed).to.include("4 validators: tolerates 1 faulty or offline; the chain stalls if 2 fail");
      expect(printed).to.include('type: "http"');
      expect(printed).to.include('url: "http://10.0.0.5:8545"');
      expect(printed).to.include("chainId: 1337");
      expect(printed).to.include('evmVersion "shanghai": --build-profile shanghai');
      expect(result.snippet).to.include('besu: {');
      expect(result.snippet).to.include('configVariable("BESU_PRIVATE_KEY")');
    });

    it("runs as a command: exit 0 with the file written, 2 on a bad value", async function () {
      this.timeout(30_000);
      const out = join(dir, "genesis.json");
      const ok = await exited(startTs("scripts/qbft/genesis.ts", ["--validators", validators.join(","), "--chain-id", "1337", "--evm", "london", "--out", out]));
      expect(ok.code, ok.output).to.equal(0);
      expect(ok.output).to.include("4 validators: tolerates 1 faulty or offline");
      expect(JSON.parse(readFileSync(out, "utf8")).config.chainId).to.equal(1337);
      const bad = await exited(startTs("scripts/qbft/genesis.ts", ["--validators", validators[0], "--chain-id", "0", "--out", join(dir, "x.json")]));
      expect(bad.code, bad.output).to.equal(2);
      expect(bad.output).to.include("[INVALID_CONFIG]").and.include("chainId");
    });

    it("refuses to replace a file unless --force", async function () {
      const out = join(dir, "genesis.json");
      writeFileSync(out, "{}");
      const args = ["--validators", validators.join(","), "--chain-id", "5", "--out", out];
      const e = await caught(() => runGenesis(args, () => {}), "INVALID_ARGUMENT");
      expect(e.message).to.include("--force");
      expect(readFileSync(out, "utf8")).to.equal("{}");
      runGenesis([...args, "--force"], () => {});
      expect(JSON.parse(readFileSync(out, "utf8")).config.chainId).to.equal(5);
    });

    it("reports bad values by path and bad flags as arguments", async function () {
      const out = join(dir, "genesis.json");
      const e = await caught(
        () => runGenesis(["--validators", `${validators[0]},${validators[0]}`, "--chain-id", "x", "--evm", "frontier", "--block-period=-1", "--out", out], () => {}),
        "INVALID_CONFIG",
      );
      expect(issuePaths(e)).to.have.members(["chainId", "validators.1", "evmVersion", "blockPeriodSeconds"]);
      await caught(() => parseGenesisArgs(["--chain-id", "1", "--out", out]), "INVALID_ARGUMENT");
      await caught(() => parseGenesisArgs(["--validators", validators[0], "--chain-id", "1", "--out", out, "--nope"]), "INVALID_ARGUMENT");
      await caught(() => parseGenesisArgs(["--validators", validators[0], "--chain-id", "1", "--out", out, "--alloc", "0xaa"]), "INVALID_ARGUMENT");
    });
  });
});
