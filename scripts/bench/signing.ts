/**
 * Per-batch signing time with a local key: ethers' `Wallet.signTransaction` (the uploader's old
 * path) against the uploader's own signer (src/upload/signing.ts), over the same batch calls, in
 * the same run. Each pair is checked to be the same bytes, so a wrong fast signature throws
 * instead of printing a time.
 */
import { hexlify, type BaseWallet } from "ethers";

import { signBatchTransaction, type BatchTransactionFields } from "../../src/upload/signing.js";

/** Milliseconds per batch transaction, each way. */
export interface SigningFigures {
  batches: number;
  /** Mean calldata bytes per batch. */
  bytes: number;
  ethers: { medianMs: number; maxMs: number };
  fast: { medianMs: number; maxMs: number };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2;
};

/**
 * Signs every call both ways with `wallet`'s key (fee figures fixed, nonces consecutive).
 *
 * @throws Error if the two ways differ for any batch
 */
export async function timeSigning(wallet: BaseWallet, chainId: bigint, to: string, calls: readonly Uint8Array[]): Promise<SigningFigures> {
  const slow: number[] = [];
  const fast: number[] = [];
  let bytes = 0;
  for (const [i, data] of calls.entries()) {
    const fields: BatchTransactionFields = {
      chainId,
      nonce: i,
      maxPriorityFeePerGas: 10n ** 9n,
      maxFeePerGas: 10n ** 10n,
      gasLimit: 16_000_000n,
      to,
      data,
    };
    bytes += data.length;
    let started = performance.now();
    // As the uploader called it before: a populated transaction with the calldata as hex.
    const theirs = await wallet.signTransaction({ type: 2, ...fields, data: hexlify(data) });
    slow.push(performance.now() - started);
    started = performance.now();
    const ours = signBatchTransaction(wallet.signingKey, fields);
    fast.push(performance.now() - started);
    if (ours !== theirs) throw new Error(`signing: batch ${i}: the fast signature differs from ethers'`);
  }
  return {
    batches: calls.length,
    bytes: bytes / calls.length,
    ethers: { medianMs: median(slow), maxMs: Math.max(...slow) },
    fast: { medianMs: median(fast), maxMs: Math.max(...fast) },
  };
}

/** The figures as lines for the bench printout. */
export function formatSigning(f: SigningFigures): string[] {
  const row = (label: string, t: { medianMs: number; maxMs: number }) =>
    [label.padEnd(44), t.medianMs.toFixed(1).padStart(8), t.maxMs.toFixed(1).padStart(8)].join("  ");
  return [
    `signing a batch transaction with a local key: ${f.batches} batch calls of the run above, ` +
      `${Math.round(f.bytes).toLocaleString("en-US")} bytes of calldata on average; the same bytes both ways`,
    `${"signer".padEnd(44)}  median ms  max ms`,
    row("ethers Wallet.signTransaction (before)", f.ethers),
    row("src/upload/signing.ts (now)", f.fast),
    `fast signing: ${(f.ethers.medianMs / f.fast.medianMs).toFixed(0)}x ethers' (median per batch)`,
  ];
}
