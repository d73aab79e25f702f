import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import { guiDir } from '../../paths.js';

// A fixed list of files, so no request path ever reaches the file system.
const FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/app.js.map': 'app.js.map',
  '/app.css': 'app.css',
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json' };

/** Serves the bundled GUI (dist/gui, built by `npm run build`); its policy is securityHeaders.ts's. */
export function guiRoutes(): Router {
  const router = new Router();
  for (const [route, file] of Object.entries(FILES)) {
    router.get(route, (ctx) => {
      const full = path.join(guiDir, file);
      if (!fs.existsSync(full)) {
        ctx.status = 503;
        ctx.type = 'text/plain; charset=utf-8';
        ctx.body = 'The GUI is not built: run `npm run build`.';
        return;
      }
      ctx.type = TYPES[path.extname(file)];
      ctx.set('Cache-Control', 'no-cache');
      ctx.body = fs.createReadStream(full);
    });
  }
  return router;
}
