// Bundles the GUI (TypeScript + Preact) into dist/gui: no CDN, works offline.
import { build } from 'esbuild';
import fs from 'node:fs';

fs.mkdirSync('dist/gui', { recursive: true });
await build({
  entryPoints: ['gui/src/main.tsx'],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: 'dist/gui/app.js',
  logLevel: 'warning',
});
fs.copyFileSync('gui/index.html', 'dist/gui/index.html');
fs.copyFileSync('gui/src/style.css', 'dist/gui/app.css');
