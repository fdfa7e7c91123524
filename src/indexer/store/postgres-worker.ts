/**
 * The thread that holds the PostgreSQL connection (src/indexer/store/postgres.ts). It is given
 * as source text, run with `new Worker(…, { eval: true })`, so that it loads the same way from
 * the TypeScript sources, the compiled package and any test runner: plain CommonJS, requiring
 * node-postgres (`pg`) by the absolute path the main thread resolved.
 *
 * Protocol: the main thread posts one request and blocks on `Atomics.wait(shared, 0, 0)`; the
 * worker answers on the same port, then sets `shared[0] = 1` and notifies. Requests:
 * `{ op: "connect", url, readOnly }`, `{ op: "query", sql, params, run }` (rows, or the count of
 * rows changed when `run`), `{ op: "batch", items: [{ sql, params }] }` (writes, run in order; the
 * counts of rows changed, or the first failure with its `index`), `{ op: "exec", sql }`
 * (statements without parameters), `{ op: "close" }`.
 * Answers: the result, or `{ error: { message, code, detail } }` (`code`: PostgreSQL's SQLSTATE).
 * A lost connection fails the request under way (`INDEX_UNAVAILABLE`); the next request connects
 * again, so a `prepaid sync --follow` waits out a server restart as it waits out a node's.
 *
 * 64-bit integers (`BIGINT`, `count(*)`) and `NUMERIC` (`sum()` of them) come back as JS
 * numbers, as SQLite's integers do: exact up to 2^53, far above any amount in fen or count here.
 */
export const WORKER_SOURCE = `
"use strict";
const { workerData } = require("node:worker_threads");
const pg = require(workerData.pgPath);
const { port, shared } = workerData;

const types = {
  getTypeParser(oid, format) {
    if (oid === 20 || oid === 1700) return (v) => (v === null ? null : Number(v));
    return pg.types.getTypeParser(oid, format);
  },
};

let client = null;
let settings = null;
/** Set when the connection was lost (server restarted, network cut): the next request reconnects. */
let broken = false;
let names = new Map();

async function connect() {
  client = new pg.Client({ connectionString: settings.url, types, application_name: "prepaid-ledger", connectionTimeoutMillis: settings.connectTimeoutMs });
  client.on("error", () => (broken = true)); // a lost connection fails the request under way, which is reported
  await client.connect();
  if (settings.readOnly) await client.query("SET default_transaction_read_only = on");
  broken = false;
  names = new Map(); // statements prepared on the old connection are gone with it
}

/** Each statement is prepared on the server once, under a name of its own. */
function nameOf(sql) {
  let name = names.get(sql);
  if (name === undefined) {
    name = "prepaid_" + names.size;
    names.set(sql, name);
  }
  return name;
}

async function handle(m) {
  if (broken && m.op !== "connect" && m.op !== "close") {
    client.end().catch(() => {});
    await connect();
  }
  try {
    return await dispatch(m);
  } catch (e) {
    // The connection failed, not the statement (no SQLSTATE, a socket error such as ECONNRESET,
    // or SQLSTATE class 08 / 57P): reconnect at the next request.
    if (connectionLost(e)) broken = true;
    throw e;
  }
}

function connectionLost(e) {
  const code = e && e.code;
  return typeof code !== "string" || /^E[A-Z]/.test(code) || code.startsWith("08") || code.startsWith("57P");
}

async function dispatch(m) {
  switch (m.op) {
    case "connect":
      settings = { url: m.url, readOnly: m.readOnly, connectTimeoutMs: m.connectTimeoutMs };
      await connect();
      return {};
    case "query": {
      const r = await client.query({ name: nameOf(m.sql), text: m.sql, values: m.params });
      return m.run ? { changes: r.rowCount ?? 0 } : { rows: r.rows };
    }
    case "batch": {
      const counts = [];
      for (let i = 0; i < m.items.length; i++) {
        const item = m.items[i];
        try {
          counts.push((await client.query({ name: nameOf(item.sql), text: item.sql, values: item.params })).rowCount ?? 0);
        } catch (e) {
          e.index = i;
          throw e;
        }
      }
      return { counts };
    }
    case "exec":
      await client.query(m.sql);
      return {};
    case "close":
      if (client !== null) await client.end();
      client = null;
      return {};
    default:
      throw new Error("unknown request " + m.op);
  }
}

function answer(message) {
  port.postMessage(message);
  Atomics.store(shared, 0, 1);
  Atomics.notify(shared, 0);
}

port.on("message", (m) => {
  handle(m).then(answer, (e) =>
    answer({ error: { message: String((e && e.message) || e), code: e && e.code, detail: e && e.detail, index: e && e.index } }),
  );
});
`;
