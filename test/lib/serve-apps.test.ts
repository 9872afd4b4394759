/**
 * serve() with the web frameworks, as docs/API.md shows them: an Express app is a request
 * handler, Koa gives one with `app.callback()`, Fastify its `app.server` once ready, Hono a
 * server from @hono/node-server's `createAdaptorServer`. The app object itself (Koa, Fastify,
 * Hono) is refused with ERR_INVALID_OPTION naming that form, in a message of a few lines, not
 * a dump of the app. And an address in use is reported as serve()'s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { createAdaptorServer } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { isHitlessError, serve, type AnyServer } from '../../src/index.js';

const options = { port: 0, host: '127.0.0.1', signals: false, idleGrace: 0 };

async function get(address: unknown): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${(address as { port: number }).port}/`);
  return `${r.status} ${await r.text()}`;
}

test('serve() serves each framework in its documented form: express(), koa.callback(), fastify.server after ready(), createAdaptorServer({ fetch })', async (t) => {
  const app = express();
  app.get('/', (_req, res) => res.send('express'));
  const koa = new Koa();
  koa.use((ctx) => void (ctx.body = 'koa'));
  const fastify = Fastify();
  fastify.get('/', async () => 'fastify');
  t.after(() => fastify.close());
  await fastify.ready();
  const hono = new Hono();
  hono.get('/', (c) => c.text('hono'));

  const served: Array<[string, http.RequestListener | AnyServer]> = [
    ['express', app],
    ['koa', koa.callback()],
    ['fastify', fastify.server],
    ['hono', createAdaptorServer({ fetch: hono.fetch })],
  ];
  for (const [name, handlerOrServer] of served) {
    const handle = await serve(handlerOrServer, options);
    t.after(() => handle.close());
    assert.equal(await get(handle.address), `200 ${name}`);
    await handle.close();
  }
});

test('serve(app) with a Koa, Fastify or Hono app object is refused, naming the form that works, in a short message', async () => {
  const refused = async (app: unknown, fix: string): Promise<void> => {
    await assert.rejects(serve(app as never, options), (err: unknown) => {
      assert.ok(isHitlessError(err, 'ERR_INVALID_OPTION'));
      assert.ok(err.message.endsWith(`Fix: ${fix}.`), err.message);
      assert.ok(err.message.length < 400, `${err.message.length} characters: ${err.message}`);
      // Node prints `details` with an uncaught error: the app object itself is not there.
      assert.ok(JSON.stringify(err.details).length < 300, JSON.stringify(err.details));
      return true;
    });
  };
  await refused(new Koa(), 'for a Koa app: serve(app.callback())');
  await refused(Fastify(), 'for a Fastify app: await app.ready(); serve(app.server)');
  await refused(new Hono(), 'for a fetch-style app (Hono): serve(createAdaptorServer({ fetch: app.fetch })), with createAdaptorServer from @hono/node-server');
  await refused({ port: 8080 }, 'serve((req, res) => res.end("ok"))');
});

test('serve() on an address in use: ERR_LISTEN_FAILED from hitless serve(), not listen()', async (t) => {
  const taken = http.createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => taken.close());
  const { port } = taken.address() as { port: number };
  const server = http.createServer();
  await assert.rejects(serve(server, { port, host: '127.0.0.1', signals: false }), (err: unknown) =>
    isHitlessError(err, 'ERR_LISTEN_FAILED') && err.message.startsWith(`hitless serve(): could not listen on 127.0.0.1:${port}: `) && /EADDRINUSE/.test(err.message));
  assert.equal(server.listening, false);
});
