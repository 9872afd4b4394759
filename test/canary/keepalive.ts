/**
 * Helpers for the canary tests on kept-alive connections (issue 18): a fixed set of
 * keep-alive connections (the project's load client, each slot one connection for the whole
 * run when none is re-opened), waits on the master's own figures instead of sleeps, and a
 * look at the load client's records per connection.
 */
import type { StatusSnapshot } from '../../src/core/types.js';
import type { LoadSummary } from '../helpers/load.js';
import { waitUntil } from '../helpers/master.js';
import type { CanaryApp } from './setup.js';

/** How often the waits below ask the master (its figures change once a second). */
const POLL_MS = 200;

const generationOf = (s: StatusSnapshot, gen: number) => s.traffic?.generations.find((g) => g.generation === gen);

/** Resolves once generation `gen`'s workers report `n` open connections (the whole fixed set is connected). */
export async function allConnected(app: CanaryApp, gen: number, n: number): Promise<void> {
  let seen: number | undefined;
  await waitUntil(async () => {
    seen = generationOf(await app.status(), gen)?.figures.connections;
    return seen === n;
  }, `generation ${gen} holds the ${n} client connections (last report: ${seen})`, 20_000, POLL_MS);
}

/** Resolves once generation `gen` has answered `more` responses beyond what it had when called. */
export async function servedMore(app: CanaryApp, gen: number, more: number): Promise<void> {
  const total = (s: StatusSnapshot): number => Object.values(generationOf(s, gen)?.figures.total ?? {}).reduce((a, b) => a + b, 0);
  const from = total(await app.status());
  let last: StatusSnapshot | undefined;
  // A bound on time, not on speed: behind nginx on a machine running two suites at once,
  // 1500 responses once took more than 20 s. Timed out, the message says what was serving.
  await waitUntil(async () => total(last = await app.status()) >= from + more, () => `generation ${gen} answered ${more} more responses ` +
    `(from ${from}; it now has ${last === undefined ? '?' : total(last)}; the master's generations: ${JSON.stringify(last?.traffic?.generations.map((g) => ({ generation: g.generation, serving: g.serving, workers: g.workers, total: g.figures.total, connections: g.figures.connections })))})`,
  60_000, POLL_MS);
}

/** One request of a load run: the connection (slot) that sent it, when, what answered. */
export interface Sent {
  slot: number;
  start: number;
  status: number;
  /** The tracked header's value (X-Generation, or X-Peer "<generation>:<upstream port>"). */
  answer: string;
}

/** Every answered request of a run, in the order they were recorded. */
export function answered(r: LoadSummary): Sent[] {
  const { records } = r;
  const out: Sent[] = [];
  for (let i = 0; i < records.count; i++) {
    const a = records.answer[i] ?? 0;
    if (a === 0) continue;
    out.push({ slot: records.slot[i] ?? 0, start: records.start[i] ?? 0, status: records.status[i] ?? 0, answer: records.answers[a - 1] ?? '' });
  }
  return out;
}

/** The generation in an answer ("2" or "2:41234"). */
export const generationIn = (answer: string): string => answer.split(':')[0] ?? '';
