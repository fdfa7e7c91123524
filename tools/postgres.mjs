#!/usr/bin/env node
// A private PostgreSQL server for the tests: the index tests run a second time against it
// (`npm test` runs `npm run test:postgres`; test/helpers/index-db.ts).
//
//   node tools/postgres.mjs run -- <command> [args…]
//       runs the command with PREPAID_TEST_POSTGRES set to a server's URL, then stops the server.
//       When PREPAID_TEST_POSTGRES is already set (CI starts one server for the whole run), it is
//       used as it is and nothing is started.
//   node tools/postgres.mjs index-tests
//       the index tests (test/indexer, test/cli, test/dashboard) on PostgreSQL, through `run`.
//
// The server: PostgreSQL from the Debian package (`apt-get install postgresql`), a fresh data
// directory in a temporary folder, trust authentication on 127.0.0.1 only and a free port, no
// fsync (test data). PostgreSQL refuses to run as root: as root, the folder is given to the
// package's `postgres` user and the server runs as that user (runuser). Stopped, and its folder
// removed, when the command ends or this process is interrupted.
//
// Plain JavaScript with no dependencies: it runs before anything is installed.
import { spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const INDEX_TEST_FOLDERS = ["test/indexer", "test/cli", "test/dashboard"];

class PostgresToolError extends Error {}

function fail(message) {
  throw new PostgresToolError(message);
}

/** The newest installed server's bin folder (Debian: /usr/lib/postgresql/<major>/bin). */
function binFolder() {
  const base = "/usr/lib/postgresql";
  const majors = existsSync(base) ? readdirSync(base).filter((d) => existsSync(join(base, d, "bin", "postgres"))) : [];
  if (majors.length === 0) {
    fail("PostgreSQL is not installed: `sudo apt-get install postgresql` (Debian), or set PREPAID_TEST_POSTGRES to a server's URL");
  }
  majors.sort((a, b) => Number(b) - Number(a));
  return join(base, majors[0], "bin");
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;
/** A command as the server's user: `postgres` when this runs as root. */
const as = (cmd, args) => (asRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args]);

/**
 * Starts a private server (see the top of this file).
 * @returns its URL (database prepaid_test, user prepaid) and a function that stops it and removes its folder
 */
export async function startPostgres() {
  const bin = binFolder();
  const dir = mkdtempSync(join(tmpdir(), "prepaid-postgres-"));
  if (asRoot) chownSync(dir, Number(spawnSync("id", ["-u", "postgres"]).stdout.toString().trim()), statSync(dir).gid);
  const data = join(dir, "data");
  const init = spawnSync(...as(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "prepaid", "--no-locale", "-E", "UTF8"]), { encoding: "utf8" });
  if (init.status !== 0) fail(`initdb failed:\n${init.stdout}${init.stderr}`);
  const port = await freePort();
  const [cmd, args] = as(join(bin, "postgres"), [
    "-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir,
    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
  ]);
  const server = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  server.stderr.on("data", (d) => (log += d.toString()));
  const stop = () => {
    if (server.exitCode === null && server.signalCode === null) {
      // Fast shutdown, by pg_ctl as the server's user (runuser does not pass SIGINT on).
      const stopped = spawnSync(...as(join(bin, "pg_ctl"), ["stop", "-D", data, "-m", "fast", "-w", "-t", "30"]), { stdio: "ignore" });
      if (stopped.status !== 0) server.kill("SIGKILL");
    }
    return new Promise((resolve) => {
      const done = () => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (server.exitCode !== null || server.signalCode !== null) done();
      else server.once("exit", done);
    });
  };
  for (let i = 0; ; i++) {
    const ready = spawnSync(join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(port), "-U", "prepaid", "-q"]);
    if (ready.status === 0) break;
    if (server.exitCode !== null || i > 100) {
      await stop();
      fail(`the server did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const created = spawnSync(join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "prepaid", "prepaid_test"], { encoding: "utf8" });
  if (created.status !== 0) {
    await stop();
    fail(`createdb failed: ${created.stderr}`);
  }
  console.error(`[postgres] PostgreSQL ${bin.split("/").at(-2)} on 127.0.0.1:${port} (data in ${dir})`);
  return { url: `postgresql://prepaid@127.0.0.1:${port}/prepaid_test`, stop };
}

async function run(command) {
  if (command.length === 0) fail("usage: node tools/postgres.mjs run -- <command> [args…]");
  const given = process.env.PREPAID_TEST_POSTGRES;
  const server = given ? { url: given, stop: async () => {} } : await startPostgres();
  const child = spawn(command[0], command.slice(1), { stdio: "inherit", env: { ...process.env, PREPAID_TEST_POSTGRES: server.url } });
  const forward = (signal) => child.kill(signal);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  const code = await new Promise((resolve) => {
    child.once("exit", (c, s) => resolve(c ?? (s ? 1 : 0)));
    // A command that cannot start (not on PATH): said plainly, and the server still stopped.
    child.once("error", (e) => {
      console.error(`[postgres] cannot run ${command[0]}: ${e.message}`);
      resolve(127);
    });
  });
  await server.stop();
  process.exit(code);
}

function indexTests() {
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(join(root, d), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith(".test.ts")) files.push(join(d, e.name));
    }
  };
  INDEX_TEST_FOLDERS.forEach(walk);
  process.env.PREPAID_TEST_INDEX = "postgres";
  // The project's own hardhat and Node 22 first on PATH, as `npm run` puts them, so this also works
  // when started as `node tools/postgres.mjs index-tests`.
  process.env.PATH = [join(root, "node_modules", ".bin"), process.env.PATH].join(delimiter);
  return run(["hardhat", "test", "mocha", ...files]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [sub, ...rest] = process.argv.slice(2);
  try {
    if (sub === "run") await run(rest[0] === "--" ? rest.slice(1) : rest);
    else if (sub === "index-tests") await indexTests();
    else fail("usage: node tools/postgres.mjs run -- <command> [args…] | index-tests");
  } catch (e) {
    if (!(e instanceof PostgresToolError)) throw e;
    console.error(`[postgres] ${e.message}`);
    process.exit(2);
  }
}
