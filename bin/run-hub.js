#!/usr/bin/env node
// The CLI is TypeScript, built into dist/ by `npm run build` (and `npm start` / `npm test`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('run-hub: not built yet; run `npm run build` in the checkout first.\n');
  process.exit(1);
}
await import(entry.href);
