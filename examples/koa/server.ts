/**
 * Koa 3 under hitless. In your app: `import { serve, … } from 'hitless'`.
 *
 *   npx tsc && hitless start --listen 127.0.0.1:8080 --workers 2 -- node build/examples/koa/server.js
 */
import http from 'node:http';
import Koa from 'koa';
import { healthHandlers, serve, workerInfo } from '../../src/index.js';

const health = healthHandlers();
const { generation = 0 } = workerInfo();

const app = new Koa();
app.use(async (ctx) => {
  if (ctx.path === '/readyz' || ctx.path === '/livez') {
    ctx.respond = false; // let the plain handler answer
    return (ctx.path === '/readyz' ? health.readiness : health.liveness)(ctx.req, ctx.res);
  }
  ctx.set('X-Generation', String(generation));
  ctx.body = `hello from koa, generation ${generation}\n`;
});

// Hand hitless the server, not app.listen(): it adopts the inherited socket and drains.
await serve(http.createServer(app.callback()));
