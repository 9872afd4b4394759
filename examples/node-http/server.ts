/**
 * Plain node:http under hitless. In your app: `import { serve, … } from 'hitless'`.
 *
 *   npx tsc && hitless start --listen 127.0.0.1:8080 --workers 2 -- node build/examples/node-http/server.js
 */
import { healthHandlers, serve, workerInfo } from '../../src/index.js';

const health = healthHandlers();
const { generation = 0 } = workerInfo();

// serve() adopts the master's socket (or binds PORT / 3000 standalone), writes READY,
// and on SIGTERM drains: Connection: close on every response, idle keep-alives closed.
await serve((req, res) => {
  if (req.url === '/readyz') return health.readiness(req, res);
  if (req.url === '/livez') return health.liveness(req, res);
  res.setHeader('X-Generation', String(generation));
  res.end(`hello from generation ${generation}\n`);
});
