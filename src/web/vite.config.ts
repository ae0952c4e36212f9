/**
 * Builds the viewer page (`index.html`) and the streamer console (`console.html`) into dist/web,
 * which every gateway serves on its WebSocket port. `npm run build` runs it after tsc.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/',
  // No public folder, no dev-server defaults that could fetch anything at run time.
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: here('../../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    // One small file per page and its CSS: nothing inlined as data: URLs (the CSP allows 'self' only).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: true,
    reportCompressedSize: false,
    rollupOptions: {
      input: { viewer: here('index.html'), console: here('console.html') },
      output: {
        // What both pages load (the SDK and the shared UI) is one file; its name says so.
        chunkFileNames: 'assets/shared-[hash].js',
        assetFileNames: (asset) => (asset.names.some((name) => name.endsWith('.css')) ? 'assets/styles-[hash][extname]' : 'assets/[name]-[hash][extname]'),
      },
    },
  },
});
