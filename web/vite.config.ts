import { defineConfig } from "vite";

// The bundle is served by the Python package (runyard.server.dashboard) at "/".
// `npm run dev` proxies the API to a local `runyard server --port 8080`.
export default defineConfig({
  base: "/",
  build: {
    outDir: "../src/runyard/server/dashboard_dist",
    emptyOutDir: true,
    assetsDir: "assets",
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
