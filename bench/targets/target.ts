/**
 * What the scenarios need from a thing under test: start it on a port, reload it (when
 * it can), say which processes serve now and which one supervises, and stop it.
 */
import { fileURLToPath } from 'node:url';
import { childrenOf, cmdline, isAlive, now, waitFor } from '../proc.js';

/** The compiled benchmark app (build/bench/app.js). */
export const appPath = fileURLToPath(new URL('../app.js', import.meta.url));
/** The repository root (build/bench/targets → ../../..). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface TargetOptions {
  port: number;
  /** Handler delay of the app in ms. */
  handlerMs: number;
  workers: number;
  /**
   * Run the app without the in-app library: plain node:http with the graceful pattern
   * PM2's docs show (server.close() on SIGINT/SIGTERM, then exit).
   */
  plainApp?: boolean;
}

/** Environment of the app for these options. */
export function appEnv(o: TargetOptions, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, HANDLER_MS: String(o.handlerMs), ...(o.plainApp ? { BENCH_APP_PLAIN: '1' } : {}), ...extra };
}

export interface Target {
  readonly name: string;
  readonly port: number;
  start(): Promise<void>;
  /**
   * Trigger one reload; resolves when the trigger itself returned (the CLI exited,
   * `pm2 reload` exited, the naive restart is listening again, or the signal was sent).
   * Absent when the target cannot reload.
   */
  reload?(): Promise<void>;
  /** PIDs of the processes that serve requests now. */
  servingPids(): number[];
  /** PID of the supervising process (hitless master, PM2 daemon), if any. */
  supervisorPid(): number | undefined;
  stop(): Promise<void>;
}

/** Children of `pid` that run the benchmark app. */
export function appChildren(pid: number): number[] {
  return childrenOf(pid).filter((c) => cmdline(c).includes('app.js'));
}

export interface ReloadTiming {
  /** When the reload was requested (proc.now clock). */
  requestedAt: number;
  /** When the trigger returned. */
  triggerDoneAt: number;
  /** When the old serving processes were all gone and as many new ones serve. */
  completeAt: number;
}

/**
 * Reload and wait until the old generation is gone and a full new one serves: the
 * same "done" for every target, observed from outside through /proc.
 */
export async function reloadAndWait(t: Target, timeoutMs = 30_000): Promise<ReloadTiming> {
  if (!t.reload) throw new Error(`${t.name} cannot reload`);
  const before = new Set(t.servingPids());
  const expected = before.size;
  const requestedAt = now();
  await t.reload();
  const triggerDoneAt = now();
  await waitFor(
    `${t.name} reload to replace ${[...before].join(',')}`,
    () => {
      for (const pid of before) if (isAlive(pid)) return false;
      const fresh = t.servingPids().filter((p) => !before.has(p));
      return fresh.length >= expected;
    },
    timeoutMs,
    2,
  );
  return { requestedAt, triggerDoneAt, completeAt: now() };
}
