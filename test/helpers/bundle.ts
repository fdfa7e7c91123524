/**
 * Bundles an entry for the browser with Vite's library mode (its own dependencies inlined, as a
 * web app's bundler would), for the Chromium tests of the browser entry.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { build } from "vite";

/**
 * Builds `entry` into `outDir/<fileName>` as one minified ES module.
 *
 * @returns the bundle's path and text
 */
export async function bundleEntry(entry: string, outDir: string, fileName: string): Promise<{ path: string; code: string }> {
  await build({
    configFile: false,
    logLevel: "warn",
    build: {
      lib: { entry, formats: ["es"], fileName: () => fileName },
      outDir,
      emptyOutDir: true,
      target: "es2022",
      minify: true,
      reportCompressedSize: false,
    },
  });
  const path = join(outDir, fileName);
  return { path, code: readFileSync(path, "utf8") };
}
