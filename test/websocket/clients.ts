/**
 * Real `ws` clients for the WebSocket tests: each records its messages, the close code and
 * when the close arrived, and how many times it opened (never more than once: these clients
 * do not reconnect, so a reload that moved them shows as no close at all).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { WebSocket } from 'ws';
import type { MasterProcess } from '../helpers/master.js';

/** A config file with just the `drain` section (the rest comes from flags); removed after the test. */
export function drainConfig(t: TestContext, drain: Record<string, unknown>): string {
  const path = join(tmpdir(), `hitless-ws-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ drain }));
  t.after(() => rmSync(path, { force: true }));
  return path;
}

/** `hitless reload --json` against `master`: its outcome (the command must succeed). */
export async function reloadJson(master: MasterProcess): Promise<Record<string, unknown>> {
  const r = await master.cli(['reload', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

export interface Client {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  /** Resolves with the close code and when it came (performance.now()). */
  closed: Promise<{ code: number; at: number }>;
  /** Resolves with the first message (the last one received, or a later one) `pred` accepts. */
  until(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Sends `{seq, …extra}` and resolves with the answer carrying that seq. */
  ask(seq: number, extra?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** Opens `n` clients to `url` (all open when it resolves); they are terminated after the test. */
export async function openClients(t: TestContext, url: string, n: number): Promise<Client[]> {
  return Promise.all(Array.from({ length: n }, async () => {
    const ws = new WebSocket(url);
    t.after(() => ws.terminate());
    const messages: Record<string, unknown>[] = [];
    const waiting = new Map<number, (m: Record<string, unknown>) => void>();
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Record<string, unknown>;
      messages.push(m);
      if (typeof m.seq === 'number') waiting.get(m.seq)?.(m);
    });
    ws.on('error', () => {});
    const closed = once(ws, 'close').then(([code]) => ({ code: code as number, at: performance.now() }));
    await once(ws, 'open');
    const ask = (seq: number, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
      new Promise((resolve) => {
        waiting.set(seq, resolve);
        ws.send(JSON.stringify({ ...extra, seq }));
      });
    const until = (pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
      const last = messages.at(-1);
      if (last !== undefined && pred(last)) return Promise.resolve(last);
      return new Promise((resolve) => {
        const on = (): void => {
          const m = messages.at(-1);
          if (m === undefined || !pred(m)) return;
          ws.off('message', on);
          resolve(m);
        };
        ws.on('message', on);
      });
    };
    return { ws, messages, closed, ask, until };
  }));
}
