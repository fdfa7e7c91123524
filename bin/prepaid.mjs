#!/usr/bin/env node
// `prepaid`, the regulator's command line (src/cli/main.ts). Plain JavaScript, so that it can
// refuse an old Node with a clear message before loading anything: the index is SQLite through
// Node's built-in node:sqlite, which needs Node 22.13 or newer. Then it runs the command and
// exits with its code:
//   - installed from npm, the package holds the compiled JavaScript (dist/cli/main.js) and no
//     src/: that runs on plain Node, with no TypeScript loader;
//   - in the repository (`npm run prepaid`), src/ is there: it registers tsx, a dev dependency,
//     which runs the TypeScript sources directly, so nothing needs building first.
import { existsSync } from "node:fs"; // built-ins only before the version check
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  // In the repository, npm scripts put the project's pinned Node 22 first on PATH.
  const inRepository = existsSync(fileURLToPath(new URL("../src/cli/main.ts", import.meta.url)));
  process.stderr.write(
    `prepaid needs Node.js 22.13 or newer (for node:sqlite); this is Node.js ${process.versions.node}.\n` +
      (inRepository
        ? "Install a newer Node, or run it through npm (`npm run prepaid -- <command>`), which uses the\nproject's pinned Node 22.\n"
        : "Install a newer Node. (The prepaid-ledger SDK itself runs on Node 20.)\n"),
  );
  process.exit(2); // exit code 2: usage, configuration or environment (see `prepaid --help`)
}

const source = new URL("../src/cli/main.ts", import.meta.url);
let entry = new URL("../dist/cli/main.js", import.meta.url);
if (existsSync(fileURLToPath(source))) {
  const { register } = await import("tsx/esm/api");
  // tsconfig: false, so that a tsconfig.json in the user's working folder cannot change how the
  // CLI's own sources are compiled.
  register({ tsconfig: false });
  entry = source;
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
