import Koa from 'koa';
import type Router from '@koa/router';
import type { AppServices } from './context.js';
import { errorMiddleware } from './errorMiddleware.js';
import { metaRoutes } from './routes/meta.js';
import { metricsRoutes } from './routes/metrics.js';
import { webhookRoutes } from './routes/webhooks.js';
import { secretRoutes } from './routes/secrets.js';
import { projectRoutes } from './routes/projects.js';
import { runRoutes } from './routes/runs.js';
import { logRoutes } from './routes/logs.js';
import { sectionRoutes } from './routes/sections.js';
import { guiRoutes } from './routes/gui.js';
import { loginRoutes } from './routes/login.js';
import { accessMiddleware } from './accessMiddleware.js';
import { securityHeaders } from './securityHeaders.js';
import { closeUnreadRequests } from './closeUnread.js';

/** One router per resource (the OpenAPI test lists their routes). */
export function createRouters(services: AppServices): Router[] {
  return [loginRoutes(services.config), guiRoutes(), metaRoutes(services), metricsRoutes(services), projectRoutes(services), runRoutes(services), logRoutes(services), sectionRoutes(services), webhookRoutes(services), secretRoutes(services)];
}

/** The Koa app: security headers, one error middleware, the access checks, then one router per resource. */
export function createApp(services: AppServices): Koa {
  const app = new Koa();
  app.silent = true; // errors are logged by errorMiddleware, once
  app.use(securityHeaders());
  app.use(closeUnreadRequests());
  app.use(errorMiddleware(services.log));
  app.use(accessMiddleware(services.config));
  for (const router of createRouters(services)) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true }));
  }
  return app;
}
