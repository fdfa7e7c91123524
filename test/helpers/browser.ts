/**
 * Real headless Chromium for browser tests: Debian's `/usr/bin/chromium` driven by
 * playwright-core (no browser download). CI installs it with `apt-get install chromium`.
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium, type Browser } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Flags for a quiet, offline, sandbox-free headless run (tests run as root in containers). */
const ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Launches Chromium with a fresh, temporary profile (`launch`, unlike `launchPersistentContext`,
 * creates one and deletes it on `close()`).
 *
 * @throws Error naming the package to install if there is no Chromium at {@link CHROMIUM}
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

/** `test-artifacts/<name>/` at the repository root, created if missing (CI uploads it). */
export function artifactDir(name: string): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test-artifacts", name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
