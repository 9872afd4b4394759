/**
 * Fake workers holding keep-alive connections for the supervisor's unit tests (split,
 * scale, crash restarts): each one keeps a list of the connection handles it holds, as the
 * in-app library would, and the world records every connection delivered to any of them.
 */
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/core/supervisor.js';
import { DEFAULT_CANARY, DEFAULT_DRAIN } from '../../src/config/defaults.js';
import type { CanaryConfig } from '../../src/config/types.js';
import type { MasterEvent } from '../../src/core/types.js';
import { FakeHandle, FakeHost, fakeSpec, type FakeProcess } from './fake-host.js';
import { reports, type Load } from './fake-traffic.js';

export const CANARY: CanaryConfig = { ...DEFAULT_CANARY, workers: 1, duration: 5000, warmup: 1000, minRequests: 100 };

/** What each fake worker holds, and every connection message delivered to any of them (no handle twice). */
export interface World {
  host: FakeHost;
  sup: Supervisor;
  events: MasterEvent[];
  held: Map<FakeProcess, unknown[]>;
  deliveries: Array<{ to: FakeProcess; handle: unknown; returned: boolean }>;
  loads: Map<number, Load & { connections?: number }>;
  /** A test's own twist on a process (after the default behaviour). */
  twist: (p: FakeProcess) => void;
}

/**
 * A Node worker with the in-app library holding keep-alive connections: says hello with
 * `moves` (gen-1 workers, unless `moves` is false), moves what a `move` asks, hands everything
 * over on a stop, takes what it is given (the generations in `secure` say the hello of a
 * worker whose servers are all https or http2, and move nothing). `oneByOne`: sends its connections one at a time,
 * each this many ms (fake) after the previous one landed, like the library's window of one.
 */
export function world(over: { workers?: number; canary?: Partial<CanaryConfig>; moves?: boolean; handover?: boolean; oneByOne?: number; canaryLend?: boolean; reloadWait?: number; secure?: number[] } = {}): World {
  const host = new FakeHost();
  const spec = fakeSpec({
    workers: over.workers ?? 3, strategy: 'canary', canary: { ...CANARY, ...over.canary }, handover: over.handover ?? true,
    ...(over.reloadWait === undefined ? {} : { drain: { ...DEFAULT_DRAIN, reloadWait: over.reloadWait } }),
  });
  const sup = new Supervisor({ stayReady: 0, host, spec: () => spec, version: 'test', listeners: () => [], ...(over.canaryLend === undefined ? {} : { canaryLend: over.canaryLend }) });
  const w: World = { host, sup, events: [], held: new Map(), deliveries: [], loads: new Map([[1, { perSecond: 200, connections: 9 }]]), twist: () => {} };
  sup.on('event', (e: MasterEvent) => w.events.push(e));
  host.behave = (gen) => (p) => {
    const load = w.loads.get(gen) ?? { perSecond: 100, connections: 2 };
    w.held.set(p, Array.from({ length: load.connections ?? 0 }, () => new FakeHandle()));
    // Read at each use: a test may give a worker other connections.
    const held = (): unknown[] => w.held.get(p) ?? [];
    queueMicrotask(() => {
      // `secure` generations: the library with an https or http2 server only (ready.ts): it accepts, moves nothing.
      if (over.secure?.includes(gen)) p.say({ hitless: 1, type: 'hello', handover: false, listeners: [], adopted: ['http'], moves: false });
      else p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'], moves: over.moves ?? true });
      p.ready();
    });
    reports(host, p, load, () => w.held.get(p)?.length ?? 0);
    let sending = 0;
    let onLanded: () => void = () => {};
    let queue: unknown[] = [];
    const sendNext = (): void => {
      const h = queue.shift();
      if (h !== undefined) p.say({ hitless: 1, type: 'conn', listener: 'http' }, h);
    };
    const sendAll = (handles: unknown[], then: () => void): void => {
      sending = handles.length;
      onLanded = then;
      if (over.oneByOne === undefined) for (const h of handles) p.say({ hitless: 1, type: 'conn', listener: 'http' }, h);
      else {
        queue = [...handles];
        sendNext();
      }
      if (sending === 0) then();
    };
    p.on('signal', (s: NodeJS.Signals) => s === 'SIGTERM' && queueMicrotask(() => p.exit(0)));
    p.on('sent', (m: Record<string, unknown>, handle: unknown) => {
      if (m.type === 'conn') {
        held().push(handle);
        w.deliveries.push({ to: p, handle, returned: m.returned === true });
      } else if (m.type === 'landed') {
        if (--sending === 0) onLanded();
        else if (over.oneByOne !== undefined) host.setTimer(sendNext, over.oneByOne);
      } else if (m.type === 'move') {
        const n = typeof m.count === 'number' ? m.count : Math.round(Number(m.share) * held().length);
        const picked = held().splice(0, n);
        sendAll(picked, () => p.say({ hitless: 1, type: 'move-done', moved: picked.length, kept: 0 }));
      } else if (m.type === 'stop') {
        sendAll(held().splice(0), () => queueMicrotask(() => p.exit(0)));
      }
    });
    w.twist(p);
  };
  return w;
}

export const sum = (w: World, gen: number): number => w.host.alive(gen).reduce((n, p) => n + (w.held.get(p)?.length ?? 0), 0);
export const sentOf = (p: FakeProcess, type: string) => p.sent.filter((s) => s.message.type === type).map((s) => s.message);

/** No handle was delivered to two workers, and every handle a worker holds is held once. */
export function assertNeverTwice(w: World): void {
  const handles = w.deliveries.filter((d) => !d.returned).map((d) => d.handle);
  const all = [...w.held.entries()].filter(([p]) => !p.exited).flatMap(([, hs]) => hs);
  assert.equal(new Set(all).size, all.length, 'a connection held by two live workers');
  for (const h of new Set(handles)) {
    const live = w.deliveries.filter((d) => d.handle === h && !d.to.exited);
    assert.ok(live.length <= 1 || live.every((d) => d.to === live[0]?.to), 'one handle delivered to two live workers');
  }
}
