/**
 * Express 5 under hitless. In your app: `import { serve, … } from 'hitless'`.
 *
 *   npx tsc && hitless start --listen 127.0.0.1:8080 --workers 2 -- node build/examples/express/server.js
 */
import http from 'node:http';
import express from 'express';
import { healthHandlers, serve, workerInfo } from '../../src/index.js';

const health = healthHandlers();
const { generation = 0 } = workerInfo();

const app = express();
app.get('/readyz', health.readiness);
app.get('/livez', health.liveness);
app.get('/', (_req, res) => {
  res.set('X-Generation', String(generation)).send(`hello from express, generation ${generation}\n`);
});

// Hand hitless the server, not app.listen(): it adopts the inherited socket and drains.
await serve(http.createServer(app));
