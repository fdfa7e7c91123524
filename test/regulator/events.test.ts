/**
 * Decoding the ledger's `BatchRecorded` log by hand (src/regulator/events.ts): the same fields as
 * ethers' ABI decoder for every log the contract can emit, and, for a log that is not in the
 * contract's exact form, whatever ethers makes of it (the same fields, or the same refusal).
 */
import { expect } from "chai";
import { Interface, getAddress, hexlify } from "ethers";
import fc from "fast-check";

import { PREPAID_LEDGER_ABI } from "../../src/ledger/abi.js";
import { decodeBatchRecorded } from "../../src/regulator/events.js";
import type { RpcLog } from "../../src/regulator/logs.js";

const ledgerInterface = new Interface(PREPAID_LEDGER_ABI);
const event = ledgerInterface.getEvent("BatchRecorded")!;

const position = { address: "0x" + "11".repeat(20), blockNumber: "0x10", transactionHash: "0x" + "22".repeat(32), logIndex: "0x3" };

const batchLog = fc
  .record({
    merchantId: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    sequence: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    recorder: fc.uint8Array({ minLength: 20, maxLength: 20 }),
    firstRecordIndex: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    count: fc.integer({ min: 0, max: 2 ** 16 - 1 }),
    chainHead: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    envelope: fc.uint8Array({ maxLength: 700 }),
  })
  .map((v) => {
    const { data, topics } = ledgerInterface.encodeEventLog(event, [
      v.merchantId,
      v.sequence,
      getAddress(hexlify(v.recorder)),
      v.firstRecordIndex,
      v.count,
      hexlify(v.chainHead),
      hexlify(v.envelope),
    ]);
    return { ...position, topics, data } satisfies RpcLog;
  });

/** What ethers' generic decoder makes of the log, in decodeBatchRecorded's shape (or its error). */
function byEthers(log: RpcLog): unknown {
  try {
    const parsed = ledgerInterface.parseLog({ topics: log.topics, data: log.data })!;
    return {
      txHash: log.transactionHash,
      blockNumber: Number(log.blockNumber),
      logIndex: Number(log.logIndex),
      merchantId: Number(parsed.args.merchantId),
      sequence: parsed.args.sequence as bigint,
      recorder: parsed.args.recorder as string,
      firstRecordIndex: parsed.args.firstRecordIndex as bigint,
      count: Number(parsed.args.count),
      chainHead: hexlify(parsed.args.chainHead as string),
      envelope: hexlify(parsed.args.envelope as string),
    };
  } catch {
    return "refused";
  }
}

function byHand(log: RpcLog): unknown {
  try {
    const b = decodeBatchRecorded(log);
    return { ...b, chainHead: hexlify(b.chainHead), envelope: hexlify(b.envelope) };
  } catch {
    return "refused";
  }
}

describe("decodeBatchRecorded", function () {
  it("gives ethers' fields for every log the contract can emit", function () {
    fc.assert(
      fc.property(batchLog, (log) => {
        const ours = byHand(log);
        expect(ours).to.not.equal("refused");
        expect(ours).to.deep.equal(byEthers(log));
      }),
      { numRuns: 300 },
    );
  });

  it("gives what ethers gives for a log altered anywhere (same fields, or refused)", function () {
    const altered = batchLog.chain((log) =>
      fc.oneof(
        // one hex digit of the data changed (offset, length, padding, values)
        fc.tuple(fc.integer({ min: 2, max: log.data.length - 1 }), fc.constantFrom(..."0123456789abcdefF")).map(([i, c]) => ({
          ...log,
          data: log.data.slice(0, i) + c + log.data.slice(i + 1),
        })),
        // a topic's high bits set, or a topic cut
        fc.tuple(fc.integer({ min: 1, max: 3 }), fc.boolean()).map(([t, cut]) => ({
          ...log,
          topics: log.topics.map((x, i) => (i !== t ? x : cut ? x.slice(0, -2) : "0x1" + x.slice(3))),
        })),
        // data cut short or lengthened by a word
        fc.boolean().map((longer) => ({ ...log, data: longer ? log.data + "00".repeat(32) : log.data.slice(0, -64) })),
      ),
    );
    fc.assert(
      fc.property(altered, (log) => {
        expect(byHand(log)).to.deep.equal(byEthers(log));
      }),
      { numRuns: 500 },
    );
  });
});
