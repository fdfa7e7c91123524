#!/usr/bin/env node
// Installs the project's dependencies when they are missing or older than package-lock.json.
//
// npm runs this before `npm start`, `npm test` and `npm run bench`, under whatever Node launched
// npm. Hardhat 3 needs Node >= 22.13, so the lockfile pins the `node` package (a Node 22 binary
// in node_modules/.bin, which npm puts first on PATH for every script). The install itself must
// also run under Node 22: npm on an older Node skips packages whose engines need 22, such as
// EDR's native simulator. On an older Node this script therefore installs through
// `npx -p node@22 npm ci`; on Node >= 22 it runs `npm ci` directly.
//
// Plain JavaScript with no dependencies, so it runs on any Node before anything is installed.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const modules = join(root, "node_modules");

function staleReason() {
  const marker = join(modules, ".package-lock.json");
  if (!existsSync(marker)) return "node_modules is missing";
  if (statSync(join(root, "package-lock.json")).mtimeMs > statSync(marker).mtimeMs) {
    return "package-lock.json changed since the last install";
  }
  if (!existsSync(join(modules, ".bin", process.platform === "win32" ? "node.cmd" : "node"))) {
    return "the pinned Node runtime is missing";
  }
  const scope = join(modules, "@nomicfoundation");
  const native = existsSync(scope) && readdirSync(scope).some((d) => d.startsWith(`edr-${process.platform}-`));
  if (!native) return "EDR's native package is missing (installed by a Node older than 22?)";
  return undefined;
}

const reason = staleReason();
if (reason !== undefined) {
  const major = Number(process.versions.node.split(".")[0]);
  const [cmd, args] = major >= 22 ? ["npm", ["ci"]] : ["npx", ["-y", "-p", "node@22", "npm", "ci"]];
  console.error(`[prepaid-ledger] installing dependencies: ${reason}`);
  console.error(`[prepaid-ledger] $ ${cmd} ${args.join(" ")}`);
  const result = spawnSync(cmd, args, { cwd: root, stdio: "inherit", shell: process.platform === "win32" });
  if (result.status !== 0) {
    console.error(`[prepaid-ledger] install failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}
