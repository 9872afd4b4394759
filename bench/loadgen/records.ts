/**
 * One record per request, kept in typed arrays so millions of requests stay cheap and
 * cross the worker-thread boundary by transfer, not copy. Shared by the benchmarks
 * (latency per reload window, the chart) and the tests (failure counts).
 */
import { performance } from 'node:perf_hooks';

/** Wall-clock milliseconds with sub-millisecond precision, comparable across threads. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * What became of a request, stored as a byte per request.
 * - ok: a complete response arrived (any status; see `status`).
 * - reset: ECONNRESET after the connection was open.
 * - refused: the connection could not be opened (ECONNREFUSED, or any error before
 *   connect, e.g. EAGAIN from a full unix-socket backlog, ENOENT for a missing socket file).
 * - timeout: no complete response within `timeoutMs`; the connection is then dropped.
 * - epipe: the write failed (EPIPE).
 * - closed: the peer closed (FIN) before the response was complete.
 * - other: any other socket error, or a response that could not be parsed.
 */
export const Kind = { ok: 0, reset: 1, refused: 2, timeout: 3, epipe: 4, closed: 5, other: 6 } as const;
export type KindName = keyof typeof Kind;
export const kindNames = Object.keys(Kind) as KindName[];

export interface LoadResult {
  count: number;
  /** Absolute ms (see `now`) at which each request was written (or its connect began). */
  start: Float64Array;
  latency: Float32Array;
  /** HTTP status of a complete response, 0 when none arrived. */
  status: Uint16Array;
  kind: Uint8Array;
  /** 1 when the request opened its own connection (the first on it). */
  fresh: Uint8Array;
  /** 1-based index into `answers` of the tracked response header's value; 0 when absent. */
  answer: Uint16Array;
  /**
   * Which of the client's connection slots sent it (0-based). With keep-alive and no
   * connection re-opened (`opened` = connections), a slot is one TCP connection for the
   * whole run: a test can follow one connection across a reload.
   */
  slot: Uint32Array;
  /** Distinct values of the tracked response header (default `x-generation`), in order of first sight. */
  answers: string[];
  /** Connections established (TCP/unix connect succeeded). */
  opened: number;
  /** Connections the server closed while no request was in flight on them (not a failure). */
  idleClosed: number;
  /** Socket error codes seen, with their counts (ECONNRESET, EPIPE, …). */
  codes: Record<string, number>;
}

const INITIAL = 1 << 14;

export class Recorder {
  count = 0;
  opened = 0;
  idleClosed = 0;
  codes: Record<string, number> = {};
  private start = new Float64Array(INITIAL);
  private latency = new Float32Array(INITIAL);
  private status = new Uint16Array(INITIAL);
  private kind = new Uint8Array(INITIAL);
  private fresh = new Uint8Array(INITIAL);
  private answer = new Uint16Array(INITIAL);
  private slot = new Uint32Array(INITIAL);
  private readonly answers: string[] = [];
  private readonly answerIndex = new Map<string, number>();

  add(start: number, end: number, status: number, kind: number, fresh: boolean, answer?: string, slot = 0): void {
    if (this.count === this.start.length) this.grow();
    const i = this.count++;
    this.start[i] = start;
    this.latency[i] = end - start;
    this.status[i] = status;
    this.kind[i] = kind;
    this.fresh[i] = fresh ? 1 : 0;
    this.slot[i] = slot;
    if (answer !== undefined) this.answer[i] = this.indexOf(answer);
  }

  code(code: string): void {
    this.codes[code] = (this.codes[code] ?? 0) + 1;
  }

  private indexOf(value: string): number {
    let i = this.answerIndex.get(value);
    if (i === undefined) {
      if (this.answers.length >= 0xffff) return 0;
      this.answers.push(value);
      i = this.answers.length;
      this.answerIndex.set(value, i);
    }
    return i;
  }

  private grow(): void {
    const n = this.start.length * 2;
    const s = new Float64Array(n); s.set(this.start); this.start = s;
    const l = new Float32Array(n); l.set(this.latency); this.latency = l;
    const st = new Uint16Array(n); st.set(this.status); this.status = st;
    const k = new Uint8Array(n); k.set(this.kind); this.kind = k;
    const f = new Uint8Array(n); f.set(this.fresh); this.fresh = f;
    const a = new Uint16Array(n); a.set(this.answer); this.answer = a;
    const c = new Uint32Array(n); c.set(this.slot); this.slot = c;
  }

  result(): LoadResult {
    const n = this.count;
    return {
      count: n,
      start: this.start.slice(0, n),
      latency: this.latency.slice(0, n),
      status: this.status.slice(0, n),
      kind: this.kind.slice(0, n),
      fresh: this.fresh.slice(0, n),
      answer: this.answer.slice(0, n),
      slot: this.slot.slice(0, n),
      answers: [...this.answers],
      opened: this.opened,
      idleClosed: this.idleClosed,
      codes: { ...this.codes },
    };
  }
}

/** Failure counts in wrk's categories, so a test reads like a wrk report. */
export interface Tally {
  /** Every request sent or attempted: one record each, never re-sent. */
  requests: number;
  /** Complete responses with a 2xx status. */
  ok: number;
  /** wrk's socket errors: connect = refused, read = reset/closed/other, write = epipe. */
  errors: { connect: number; read: number; write: number; timeout: number };
  /** Complete responses outside 2xx (stricter than wrk, which lets 3xx pass). */
  non2xx: number;
  /** Socket errors + non-2xx: every request that did not get a 2xx answer. */
  failed: number;
  /** Requests per value of the tracked header (e.g. per generation), 2xx or not. */
  byAnswer: Record<string, number>;
}

/** Sum a run's records into wrk-shaped counts. */
export function tally(r: LoadResult): Tally {
  const errors = { connect: 0, read: 0, write: 0, timeout: 0 };
  const byAnswer: Record<string, number> = {};
  let ok = 0;
  let non2xx = 0;
  for (let i = 0; i < r.count; i++) {
    switch (r.kind[i]) {
      case Kind.ok: {
        const s = r.status[i] ?? 0;
        if (s >= 200 && s < 300) ok++;
        else non2xx++;
        const a = r.answer[i] ?? 0;
        if (a > 0) {
          const v = r.answers[a - 1] ?? '';
          byAnswer[v] = (byAnswer[v] ?? 0) + 1;
        }
        break;
      }
      case Kind.refused: errors.connect++; break;
      case Kind.epipe: errors.write++; break;
      case Kind.timeout: errors.timeout++; break;
      default: errors.read++;
    }
  }
  const failed = errors.connect + errors.read + errors.write + errors.timeout + non2xx;
  return { requests: r.count, ok, errors, non2xx, failed, byAnswer };
}
