/**
 * Real processes for integration tests: a `hardhat node` on 127.0.0.1 and TypeScript workers.
 * Every process started here is stopped by the test that started it (and killed on exit).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { freePort } from "../../scripts/lib/ports.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(import.meta.url);
const alive = new Set<ChildProcess>();
process.on("exit", () => alive.forEach((p) => p.kill("SIGKILL")));

export { freePort };

export interface Running {
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

function track(child: ChildProcess, group = false): Running {
  alive.add(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    process: child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // A group of its own (a shell that runs npm that runs node): stop all of it, or a
        // grandchild outlives its parent and keeps this process's pipes to it open.
        if (group && child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
        else child.kill("SIGTERM");
      }
      await exited;
      alive.delete(child);
    },
  };
}

/**
 * Waits for `p` to exit; its exit code. Past `ms`, stops it and throws with its output.
 */
export async function finished(p: Running, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  while (p.process.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (p.process.exitCode === null) {
    await p.stop();
    throw new Error(`timed out: ${p.output()}`);
  }
  return p.process.exitCode;
}

/** How a process is started. */
export interface StartOptions {
  /**
   * In a process group of its own, so a Ctrl-C in the terminal (SIGINT to the foreground group)
   * does not reach it: the parent stops it when it is done with it (the supervision script reads
   * its summary from the node first). Still killed when the parent exits.
   */
  ownProcessGroup?: boolean;
}

/** Starts `hardhat node` on 127.0.0.1 and resolves once it accepts JSON-RPC. */
export async function startHardhatNode(options: StartOptions = {}): Promise<Running & { url: string }> {
  const port = await freePort();
  // hardhat's package.json names its CLI as the `hardhat` bin; its "exports" hide the path.
  const cli = join(dirname(require.resolve("hardhat/package.json")), "dist", "src", "cli.js");
  const child = spawn(process.execPath, [cli, "node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.ownProcessGroup === true,
  });
  const running = track(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`hardhat node exited: ${running.output()}`);
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (res.ok) return { ...running, url };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await running.stop();
  throw new Error("hardhat node did not start within 60 s");
}

/** Runs a TypeScript file with this Node and tsx. */
export function startTs(file: string, args: string[], env: NodeJS.ProcessEnv = {}, options: StartOptions = {}): Running {
  const child = spawn(process.execPath, ["--import", "tsx", join(root, file), ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
    detached: options.ownProcessGroup === true,
  });
  return track(child);
}

/** Runs any command (for example plain `node` in another project's folder). */
export function startCommand(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv } & StartOptions): Running {
  const group = options.ownProcessGroup === true;
  const child = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...options.env }, detached: group });
  return track(child, group);
}

/**
 * The path of a Foundry binary (anvil, cast) shipped inside its npm platform package, so tests
 * run it directly rather than through the npm wrapper (which would leave it orphaned if killed).
 */
export function foundryBinary(tool: "anvil" | "cast"): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const pkg = `@foundry-rs/${tool}-${process.platform}-${arch}`;
  return join(dirname(require.resolve(`${pkg}/package.json`)), "bin", process.platform === "win32" ? `${tool}.exe` : tool);
}

/**
 * Starts anvil on 127.0.0.1 with a private HOME (it writes caches there) and --prune-history
 * (it keeps no history states, which otherwise fill the disk); resolves once it answers.
 * `extraArgs` go to anvil as they are (for example `["--hardfork", "london"]`).
 */
export async function startAnvil(extraArgs: string[] = []): Promise<Running & { url: string; home: string }> {
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), "prepaid-ledger-anvil-"));
  // `--prune-history=400` (or any other --prune-history in extraArgs) replaces the default: reorg
  // tests need the recent states that plain --prune-history drops (test/helpers/reorg.ts).
  const prune = extraArgs.some((a) => a.startsWith("--prune-history")) ? [] : ["--prune-history"];
  const args = ["--host", "127.0.0.1", "--port", String(port), ...prune, ...extraArgs];
  const child = spawn(foundryBinary("anvil"), args, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, HOME: home },
  });
  const running = track(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`anvil exited: ${running.output()}`);
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (res.ok) return { ...running, url, home };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await running.stop();
  throw new Error("anvil did not start within 30 s");
}

/** Runs `cast` with the given arguments; resolves with its trimmed standard output. */
export async function cast(args: string[], home: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(foundryBinary("cast"), args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: home } });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`cast ${args[0]} failed (${code}): ${err}`))));
  });
}
