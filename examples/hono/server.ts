/**
 * Hono on Node (@hono/node-server) under hitless. In your app: `import { serve, … } from 'hitless'`.
 *
 *   npx tsc && hitless start --listen 127.0.0.1:8080 --workers 2 -- node build/examples/hono/server.js
 */
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { isShuttingDown, serve, workerInfo } from '../../src/index.js';

const { generation = 0 } = workerInfo();

const app = new Hono();
// Readiness fails (503) as soon as shutdown begins, so a load balancer stops routing first.
app.get('/readyz', (c) => (isShuttingDown() ? c.text('shutting down\n', 503) : c.text('ready\n')));
app.get('/livez', (c) => c.text('ok\n'));
app.get('/', (c) => {
  c.header('X-Generation', String(generation));
  return c.text(`hello from hono, generation ${generation}\n`);
});

// createAdaptorServer() builds the node:http server without listening: hitless adopts
// the inherited socket (instead of @hono/node-server's serve(), which binds a port).
await serve(createAdaptorServer({ fetch: app.fetch }) as Server);
