import { defineConfig } from "vite";

// Everything is bundled into dist/ (no CDN); the hub serves dist/ at "/".
// EVHUB_URL points the dev server's proxy at a running hub.
const hub = process.env.EVHUB_URL ?? "http://127.0.0.1:8300";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      "/api": { target: hub, ws: true, changeOrigin: true },
    },
  },
});
