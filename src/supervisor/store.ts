/**
 * What a supervisor signed, kept on disk before it is served, so a restarted node never signs two
 * different checkpoints for one record count.
 *
 * A signature for a mark that a reorg removed is withdrawn: no longer served nor submitted (the
 * chain no longer has that checkpoint), but remembered, so the node never signs a different
 * checkpoint for the same count in the same supervisor set (peers may hold the first one: two
 * would be an equivocation anyone can prove on chain). If the new branch marks the very same
 * checkpoint again, the withdrawn signature is reinstated.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { sameCheckpoints, type SignedCheckpoint } from "./checkpoint.js";

/** Signed checkpoints kept on disk at or below the last final one. */
const KEEP_FINAL = 16;
/** Withdrawn signatures remembered (the newest counts). */
const KEEP_WITHDRAWN = 256;

type Entries = Record<string, SignedCheckpoint>;

export class SignedStore {
  private readonly signed = new Map<string, SignedCheckpoint>();
  private readonly withdrawn = new Map<string, SignedCheckpoint>();

  constructor(
    private readonly dir: string,
    private readonly quorum: string,
  ) {
    const read = (file: string, into: Map<string, SignedCheckpoint>) => {
      if (!existsSync(file)) return;
      for (const [count, s] of Object.entries(JSON.parse(readFileSync(file, "utf8")) as Entries)) into.set(count, s);
    };
    read(this.file, this.signed);
    read(this.withdrawnFile, this.withdrawn);
  }

  get(count: bigint): SignedCheckpoint | undefined {
    return this.signed.get(count.toString());
  }

  has(count: bigint): boolean {
    return this.signed.has(count.toString());
  }

  /** Record counts it holds a served signature for. */
  counts(): bigint[] {
    return [...this.signed.keys()].map(BigInt);
  }

  /** The highest count it signed and still serves (0 if none). */
  latest(): bigint {
    return this.counts().reduce((a, b) => (b > a ? b : a), 0n);
  }

  get withdrawnCount(): number {
    return this.withdrawn.size;
  }

  /**
   * Whether the node may sign `s` for `count`: "sign" if it never signed that count; "signed" if
   * it signed and serves it already; "reinstated" if it had withdrawn the very same checkpoint
   * (served again as it was, no new signature); "conflict" if it had withdrawn a different one
   * (it must not sign this one).
   */
  admit(count: bigint, s: Omit<SignedCheckpoint, "signatures">, lastFinal: bigint): "sign" | "reinstated" | "conflict" | "signed" {
    const key = count.toString();
    if (this.signed.has(key)) return "signed";
    const old = this.withdrawn.get(key);
    if (old === undefined) return "sign";
    if (!sameCheckpoints(old, { ...s, signatures: [] })) return "conflict";
    this.withdrawn.delete(key);
    this.signed.set(key, { ...old, markBlock: s.markBlock });
    this.save(lastFinal);
    return "reinstated";
  }

  /** Keeps a new signature, on disk before it is served. */
  put(count: bigint, s: SignedCheckpoint, lastFinal: bigint): void {
    this.signed.set(count.toString(), s);
    this.save(lastFinal);
  }

  /** Stops serving what it signed for `count` (its mark is no longer on the chain). */
  withdraw(count: bigint, lastFinal: bigint): void {
    const key = count.toString();
    const s = this.signed.get(key);
    if (s === undefined) return;
    this.signed.delete(key);
    this.withdrawn.set(key, s);
    this.save(lastFinal);
  }

  /** Withdraws every signature for a mark in a block after `block`; returns the counts withdrawn. */
  withdrawAfter(block: number, lastFinal: bigint): bigint[] {
    const gone = [...this.signed.entries()].filter(([, s]) => s.markBlock !== undefined && s.markBlock > block).map(([k]) => BigInt(k));
    for (const count of gone) this.withdraw(count, lastFinal);
    return gone;
  }

  private get file(): string {
    return join(this.dir, `signed-${this.quorum.toLowerCase()}.json`);
  }

  private get withdrawnFile(): string {
    return join(this.dir, `withdrawn-${this.quorum.toLowerCase()}.json`);
  }

  /**
   * Writes what it signed, keeping every count above the last final checkpoint and the
   * KEEP_FINAL most recent at or below it (peers may still fetch those to spot a double
   * signature); older ones are settled on chain, and the file would otherwise grow forever.
   */
  private save(lastFinal: bigint): void {
    const settled = this.counts().filter((c) => c <= lastFinal).sort((a, b) => (a < b ? 1 : -1));
    for (const count of settled.slice(KEEP_FINAL)) this.signed.delete(count.toString());
    const withdrawn = [...this.withdrawn.keys()].map(BigInt).sort((a, b) => (a < b ? 1 : -1));
    for (const count of withdrawn.slice(KEEP_WITHDRAWN)) this.withdrawn.delete(count.toString());
    mkdirSync(this.dir, { recursive: true });
    for (const [file, map] of [
      [this.file, this.signed],
      [this.withdrawnFile, this.withdrawn],
    ] as const) {
      if (file === this.withdrawnFile && map.size === 0 && !existsSync(file)) continue;
      writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(map)));
      renameSync(`${file}.tmp`, file);
    }
  }
}
