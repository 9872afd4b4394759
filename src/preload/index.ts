/**
 * The hitless preload: lets an app that calls `server.listen(3000)` itself run under the
 * master unchanged. The master starts Node workers with NODE_OPTIONS=--import <this file>
 * (src/master/preload-env.ts); `"preload": false` or `--no-preload` turns it off.
 *
 * It acts only in the process the sockets were passed to (LISTEN_PID is its pid): the
 * app's own child processes inherit NODE_OPTIONS too and must be left alone, except that a
 * child trying to listen on a port the master holds (the app started through `npm start`)
 * gets a one-line explanation instead of EADDRINUSE. Workers of node:cluster listen through
 * their primary (the worker the master started, where the listen is adopted) and are left alone. Nothing else is loaded in other processes.
 */
import cluster from 'node:cluster';
import { env, pid } from 'node:process';

const owner = env.LISTEN_PID;
if (owner === String(pid) && env.LISTEN_FDS) {
  const { inheritedSockets } = await import('./held.js');
  const held = inheritedSockets(env, pid);
  if (held.length > 0) (await import('./listen.js')).hookListen(held);
} else if (owner !== undefined && /^\d+$/.test(owner) && env.HITLESS_LISTEN_ADDRS && !cluster.isWorker) {
  const { foreignSockets } = await import('./held.js');
  (await import('./foreign.js')).hookForeignListen(foreignSockets(env), Number(owner));
}
