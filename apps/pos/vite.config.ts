// The point-of-sale app's build: `npm run pos` (dev server), `npm run pos:build` (apps/pos/dist),
// `npm run pos:preview` (serves the build). Everything on 127.0.0.1.
import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 1024 },
  server: { host: "127.0.0.1", port: 5173 },
  preview: { host: "127.0.0.1", port: 4173 },
});
