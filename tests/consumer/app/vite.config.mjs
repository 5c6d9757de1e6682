// Vite builds vite.html (entry src/vite-main.ts) into dist/vite/, served under /vite/.
export default {
  logLevel: 'warn',
  base: '/vite/',
  build: { outDir: 'dist/vite', emptyOutDir: true, target: 'es2022', rollupOptions: { input: 'vite.html' } },
};
