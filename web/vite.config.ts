import { defineConfig } from "vite";

// The bundle is served by the Python package (runyard.server.dashboard) at "/".
// `npm run dev` proxies the API to a local `runyard server --port 8080`.
export default defineConfig({
  base: "/",
  build: {
    outDir: "../src/runyard/server/dashboard_dist",
    emptyOutDir: true,
    assetsDir: "assets",
    // plotly.js (4.6 MB) is a chunk of its own, loaded by the first plotly panel only
    chunkSizeWarningLimit: 5000,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
