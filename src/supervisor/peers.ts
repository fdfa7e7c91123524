/**
 * A supervisor's peers over HTTP (src/supervisor/http.ts): fetching what they signed for a
 * record count, a liveness ping between checkpoints, and sorting the signatures served by signer.
 */
import { verifyTypedData, type TypedDataDomain } from "ethers";

import { CHECKPOINT_TYPES, checkpointHash, type CheckpointJson, type SignedCheckpoint } from "./checkpoint.js";

/** A peer seen within this long counts as "seen" in the status. */
const SEEN_FOR_MS = 5_000;
/** How long one request to a peer may take. */
const PEER_TIMEOUT_MS = 500;

/** signer (lower case) → checkpoint hash → [checkpoint, signature] */
export type BySigner = Map<string, Map<string, [CheckpointJson, string]>>;

export class Peers {
  private readonly seenAt = new Map<string, number>();
  private lastPing = 0;

  constructor(readonly urls: readonly string[]) {}

  /** Peers that answered within the last few seconds. */
  seen(): number {
    const now = Date.now();
    return [...this.seenAt.values()].filter((t) => now - t < SEEN_FOR_MS).length;
  }

  /** Between checkpoints, keeps "peers seen" true: one status request a second per peer. */
  async ping(): Promise<void> {
    if (Date.now() - this.lastPing < 1_000) return;
    this.lastPing = Date.now();
    await Promise.all(
      this.urls.map(async (peer) => {
        try {
          const res = await fetch(`${peer}/status`, { signal: AbortSignal.timeout(PEER_TIMEOUT_MS) });
          if (res.ok) this.seenAt.set(peer, Date.now());
        } catch {
          // not seen
        }
      }),
    );
  }

  /** What each peer that answers serves for `count`. */
  async signedFor(count: bigint): Promise<SignedCheckpoint[]> {
    const answers = await Promise.all(
      this.urls.map(async (peer) => {
        try {
          const res = await fetch(`${peer}/checkpoints/${count}`, { signal: AbortSignal.timeout(PEER_TIMEOUT_MS) });
          this.seenAt.set(peer, Date.now());
          if (!res.ok) return undefined;
          return (await res.json()) as SignedCheckpoint;
        } catch {
          return undefined;
        }
      }),
    );
    return answers.filter((a): a is SignedCheckpoint => a !== undefined && Array.isArray(a.checkpoints) && Array.isArray(a.signatures));
  }
}

/** The valid signatures over checkpoints of `ledger` at `count`, by signer and checkpoint hash. */
export function sortBySigner(served: SignedCheckpoint[], count: bigint, ledger: string, domain: TypedDataDomain): BySigner {
  const bySigner: BySigner = new Map();
  for (const s of served) {
    s.checkpoints.forEach((c, i) => {
      try {
        if (BigInt(c.recordCount) !== count || c.ledger.toLowerCase() !== ledger.toLowerCase()) return;
        const signer = verifyTypedData(domain, CHECKPOINT_TYPES, c, s.signatures[i]).toLowerCase();
        const digests = bySigner.get(signer) ?? new Map<string, [CheckpointJson, string]>();
        digests.set(checkpointHash(domain, c), [c, s.signatures[i]]);
        bySigner.set(signer, digests);
      } catch {
        // not a valid checkpoint or signature: ignored
      }
    });
  }
  return bySigner;
}
