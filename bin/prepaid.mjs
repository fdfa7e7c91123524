#!/usr/bin/env node
// `prepaid`, the regulator's command line (src/cli/main.ts). Plain JavaScript, so that it can
// refuse an old Node with a clear message before loading anything: the index is SQLite through
// Node's built-in node:sqlite, which needs Node 22.13 or newer. Then it registers tsx, which
// runs the TypeScript sources directly (nothing is built), and exits with the command's code.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  process.stderr.write(
    `prepaid needs Node.js 22.13 or newer (for node:sqlite); this is Node.js ${process.versions.node}.\n` +
      "Install a newer Node, or run it through npm (`npm run prepaid -- <command>`), which uses the\n" +
      "project's pinned Node 22.\n",
  );
  process.exit(2); // exit code 2: usage, configuration or environment (see `prepaid --help`)
}

const { register } = await import("tsx/esm/api");
// tsconfig: false, so that a tsconfig.json in the user's working folder cannot change how the
// CLI's own sources are compiled.
register({ tsconfig: false });
const { main } = await import(new URL("../src/cli/main.ts", import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
