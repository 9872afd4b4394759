/**
 * Fastify 5 under hitless. In your app: `import { serve, … } from 'hitless'`.
 *
 *   npx tsc && hitless start --listen 127.0.0.1:8080 --workers 2 -- node build/examples/fastify/server.js
 */
import Fastify from 'fastify';
import { healthHandlers, onShutdown, serve, workerInfo } from '../../src/index.js';

const health = healthHandlers();
const { generation = 0 } = workerInfo();

const app = Fastify();
app.get('/readyz', (req, reply) => { reply.hijack(); health.readiness(req.raw, reply.raw); });
app.get('/livez', (req, reply) => { reply.hijack(); health.liveness(req.raw, reply.raw); });
app.get('/', async (_req, reply) => {
  reply.header('X-Generation', String(generation));
  return `hello from fastify, generation ${generation}\n`;
});

// Fastify builds its http.Server at construction; ready() loads the plugins. Instead of
// app.listen(), hand the server to hitless, which adopts the inherited socket and drains.
await app.ready();
onShutdown(() => app.close()); // runs Fastify's onClose hooks after the drain
await serve(app.server);
