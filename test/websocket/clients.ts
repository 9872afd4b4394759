/**
 * Real `ws` clients for the WebSocket tests: each records its messages, the close code and
 * when the close arrived, and how many times it opened (never more than once: these clients
 * do not reconnect, so a reload that moved them shows as no close at all).
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { WebSocket } from 'ws';

export interface Client {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  /** Resolves with the close code and when it came (performance.now()). */
  closed: Promise<{ code: number; at: number }>;
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
    return { ws, messages, closed, ask };
  }));
}
