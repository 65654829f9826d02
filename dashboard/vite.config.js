import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The dashboard is served by ratekitd's admin listener under a strict CSP
// (script-src 'self'; style-src 'self'): everything must be an external file.
export default defineConfig({
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 700,
  },
  server: {
    port: 5173,
    proxy: {
      '/api': { target: process.env.RATEKIT_ADMIN_URL || 'http://127.0.0.1:8081', changeOrigin: true },
    },
  },
});
