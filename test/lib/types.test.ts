/**
 * The published types as an application's TypeScript project sees them: a throw-away project
 * with `tsc --init`'s checks (strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess)
 * and `"types": ["node"]` imports 'hitless' and 'hitless/ws' — the package's own .d.ts,
 * through its `exports` — and this project's tsc must accept it. Compile-only: nothing runs.
 * It guards serve()'s handle type (the server given, or the http.Server made for a handler),
 * options that take an explicit `undefined`, and the typed hitless/ws example of
 * docs/websockets.md, verbatim.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Typed uses of the library; `@ts-expect-error` lines must stay errors. */
const USES = `
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import express from 'express';
import { WebSocketServer } from 'ws';
import { listen, onShutdown, serve, shutdown, track, type ServeHandle } from 'hitless';
import { moveWebSockets } from 'hitless/ws';

// A handler (an Express app is one): the handle's server is the http.Server serve() made.
const fromHandler = await serve(express());
fromHandler.server.keepAliveTimeout = 65_000;
new WebSocketServer({ server: fromHandler.server });
const fromFunction = await serve((_req, res) => res.end('ok'));
const made: http.Server = fromFunction.server;

// A server given: the handle has its type.
const tls = await serve(https.createServer({}, express()));
tls.server.setSecureContext({});
const h2: http2.Http2Server = (await serve(http2.createServer())).server;
const plain = await serve(net.createServer());
// @ts-expect-error a net.Server has no keepAliveTimeout
plain.server.keepAliveTimeout = 1;

// What type-checked before still does: the handle without its parameter, a handler-or-server value.
const handle: ServeHandle = await serve(http.createServer());
const either = await serve(process.env.TLS ? https.createServer({}) : express());
const server: net.Server = either.server;

// An explicit undefined is the default, as at run time (exactOptionalPropertyTypes).
const port = process.env.PORT ? Number(process.env.PORT) : undefined;
await serve(express(), {
  name: process.env.NAME, port, host: process.env.HOST, path: undefined, backlog: undefined,
  signals: undefined, shutdownDelay: undefined, timeout: undefined, idleGrace: undefined,
  onUpgrade: undefined, spread: undefined,
});
await listen(http.createServer(), { name: undefined, shutdown: { timeout: undefined } });
track(http.createServer(), { signals: undefined });
await shutdown(http.createServer(), { spread: undefined });
onShutdown(() => {}, { timeout: undefined });
moveWebSockets(new WebSocketServer({ noServer: true }), {
  serialize: () => 1, adopt: () => {}, busy: undefined, moved: undefined, server: undefined,
});

void [made, h2, handle, server];
`;

/** The names docs/websockets.md's example leaves to the application. */
const WS_EXAMPLE_PRELUDE = `
declare const app: import('node:http').RequestListener;
declare function authenticate(req: import('node:http').IncomingMessage): string;
declare function onMessage(ws: import('ws').WebSocket, data: import('ws').RawData): void;
declare function leave(ws: import('ws').WebSocket): void;
`;

function wsExample(): string {
  const doc = readFileSync(join(root, 'docs', 'websockets.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Moved: `hitless/ws`'));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'docs/websockets.md has a ```ts block under "Moved: `hitless/ws`"');
  return block[1]!;
}

test('the published types in a strict project (tsc --init, exactOptionalPropertyTypes): serve()\'s handle carries the server\'s type, options take undefined, the hitless/ws example type-checks', (t) => {
  // Under build/, so that 'hitless' resolves to this package (its exports) and the rest to node_modules.
  const dir = mkdtempSync(join(root, 'build', '.types-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'nodenext', target: 'esnext', types: ['node'], strict: true, exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true, verbatimModuleSyntax: true, isolatedModules: true, moduleDetection: 'force',
      skipLibCheck: true, noEmit: true,
    },
    files: ['uses.ts', 'ws-example.ts'],
  }));
  writeFileSync(join(dir, 'uses.ts'), USES);
  writeFileSync(join(dir, 'ws-example.ts'), WS_EXAMPLE_PRELUDE + wsExample());
  const tsc = createRequire(import.meta.url).resolve('typescript/package.json').replace(/package\.json$/, 'bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('the published .d.ts files import node:* modules as namespaces, never by default import: a project without esModuleInterop (TypeScript 5 with "module": "commonjs") failed on them with TS1192 (regression)', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string } | string> };
  const seen = new Set<string>();
  const offenders: string[] = [];
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const line of text.split('\n')) if (/^import (type )?[A-Za-z_$][\w$]* from 'node:/.test(line)) offenders.push(`${file.slice(root.length)}: ${line}`);
    for (const m of text.matchAll(/from '(\.[^']+)\.js'/g)) visit(join(dirname(file), `${m[1]!}.d.ts`));
  };
  for (const e of Object.values(pkg.exports)) if (typeof e === 'object' && e.types) visit(join(root, e.types));
  assert.ok(seen.size > 10, `${seen.size} declaration files reached`);
  assert.deepEqual(offenders, []);
});
