/**
 * Node 22's built-in SQLite (`node:sqlite`), loaded once for the index (src/indexer), the
 * dashboard's auth file and the reader's spilled accounts (src/regulator), without the
 * ExperimentalWarning Node 22 prints on first use (it is stable enough for these uses).
 */
import { createRequire } from "node:module";

const requireBuiltin = createRequire(import.meta.url);

/** `node:sqlite` without its one-time ExperimentalWarning on stderr. */
export function loadSqlite(): typeof import("node:sqlite") {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === "string" ? warning : warning.message;
    if (/SQLite/.test(text)) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return requireBuiltin("node:sqlite") as typeof import("node:sqlite");
  } finally {
    process.emitWarning = emit;
  }
}
