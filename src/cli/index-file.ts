/**
 * Opening the index for the report commands: read-only, and only if it exists (a report never
 * creates an empty index by accident).
 */
import { IndexQueries } from "../indexer/queries.js";
import { openIndex } from "../indexer/open.js";
import { integer } from "./args.js";
import type { Context } from "./command.js";

/**
 * Runs `fn` with queries over the context's index, opened read-only, and closes it after.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` (no file: run sync first), `INDEX_CORRUPT`
 */
export async function withQueries<T>(ctx: Context, fn: (q: IndexQueries) => Promise<T>): Promise<T> {
  const db = openIndex(ctx.db, { mustExist: true, readOnly: true });
  try {
    return await fn(new IndexQueries(db));
  } finally {
    db.close();
  }
}

/**
 * A merchant id from the command line.
 * @throws PrepaidLedgerError `INVALID_ARGUMENT` naming `what`
 */
export function merchantId(text: string, what: string): number {
  return integer(text, what, 1);
}
