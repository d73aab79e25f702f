import Router from '@koa/router';
import type { AppServices } from '../context.js';

export function logRoutes(_services: AppServices): Router {
  return new Router();
}
