/**
 * What to pass instead of a web framework's app object. Only an Express app is a request
 * handler itself; a Koa, Fastify or Hono app is neither a handler nor a `net.Server`, and
 * `serve(app)` refuses it: the error then names the form that works for that framework,
 * told apart by its shape (docs/API.md, "The one-liner").
 */
import * as net from 'node:net';

/**
 * The fix for an object given to `serve()`, `listen()` or `track()` where a handler or a server was
 * expected: the framework's own form when the object looks like one of its apps, else `otherwise`.
 *
 * @example
 * appFix('serve', new Koa(), 'serve(handler)'); // 'for a Koa app: serve(app.callback())'
 */
export function appFix(fn: 'serve' | 'listen' | 'track', value: unknown, otherwise: string): string {
  if (value === null || typeof value !== 'object') return otherwise;
  const app = value as Record<string, unknown>;
  // Fastify builds its http.Server at construction; ready() loads the plugins.
  if (app.server instanceof net.Server && typeof app.ready === 'function') return `for a Fastify app: await app.ready(); ${fn}(app.server)`;
  // Koa: app.callback() is the request handler app.listen() would give http.createServer().
  if (typeof app.callback === 'function') return fn === 'serve' ? 'for a Koa app: serve(app.callback())' : `for a Koa app: ${fn}(http.createServer(app.callback()))`;
  // Hono and other fetch-style apps ((Request) => Response): Node serves them through an adaptor.
  if (typeof app.fetch === 'function') {
    return `for a fetch-style app (Hono): ${fn}(createAdaptorServer({ fetch: app.fetch })), with createAdaptorServer from @hono/node-server`;
  }
  return otherwise;
}
