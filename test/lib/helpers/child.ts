/**
 * Child-process helpers for the in-app library tests: spawn a fixture, wait for a JSON
 * event line on its stdout (never a sleep), and always kill it at the end of the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { RawConnection } from '../../helpers/http.js';
import { SAME_STOP_MS } from '../../../src/lib/defaults.js';

export interface FixtureEvent {
  event: string;
  [key: string]: unknown;
}

export interface Fixture {
  child: ChildProcess;
  /** Resolves with the next (or an already seen, not yet taken) event named `name`. */
  next<T extends object = Record<string, unknown>>(name: string): Promise<FixtureEvent & T>;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or 128 + signal number style string for signals). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Writes one line to the child's stdin. */
  tell(line: string): void;
}

export const fixturePath = (name: string): string =>
  fileURLToPath(new URL(`../../fixtures/lib/${name}.js`, import.meta.url));

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  /** Extra stdio entries after stdin/stdout/stderr (fd 3, 4, ...). */
  extra?: Array<'pipe' | 'ignore' | 'ipc' | number>;
  /** Prefix the command with the LISTEN_PID exec shim. */
  shim?: boolean;
}

/** Spawns build/test/fixtures/lib/<name>.js and kills it when the test ends. */
export function spawnFixture(t: TestContext, name: string, options: SpawnOptions = {}): Fixture {
  const node = [process.execPath, fixturePath(name)];
  const [cmd, ...args] = options.shim ? ['sh', '-c', 'LISTEN_PID=$$ exec "$@"', 'sh', ...node] : node;
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const child = spawn(cmd!, args, {
    env: env as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe', ...((options.extra ?? []) as never[])],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const seen: FixtureEvent[] = [];
  const waiting: Array<{ name: string; resolve: (e: FixtureEvent) => void }> = [];
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    let nl: number;
    while ((nl = out.indexOf('\n')) !== -1) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      let event: FixtureEvent;
      try {
        event = JSON.parse(line) as FixtureEvent;
      } catch {
        continue;
      }
      const at = waiting.findIndex((w) => w.name === event.event);
      if (at !== -1) waiting.splice(at, 1)[0]!.resolve(event);
      else seen.push(event);
    }
  });
  return {
    child,
    exited,
    stderr: () => err,
    tell: (line) => child.stdin!.write(`${line}\n`),
    next<T extends object>(name: string): Promise<FixtureEvent & T> {
      const at = seen.findIndex((e) => e.event === name);
      if (at !== -1) return Promise.resolve(seen.splice(at, 1)[0]! as FixtureEvent & T);
      return new Promise((resolve, reject) => {
        waiting.push({ name, resolve: resolve as (e: FixtureEvent) => void });
        exited.then(({ code, signal }) =>
          reject(new Error(`fixture exited (${code ?? signal}) before event; stderr:\n${err}`)),
        );
      });
    },
  };
}

/**
 * The `server` fixture with one request in flight (`/slow`, answered on `release`, or
 * `/hang`, never), stopped with a real SIGTERM once that request began: the start of every
 * drain test.
 *
 * @example
 * const { f, conn } = await stoppedWithRequestInFlight(t, 'slow', { HOOKS: 'ok' });
 */
export async function stoppedWithRequestInFlight(t: TestContext, path: 'slow' | 'hang', env: Record<string, string>): Promise<{ f: Fixture; conn: RawConnection }> {
  const f = spawnFixture(t, 'server', { env });
  const { port } = await f.next<{ port: number }>('listening');
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  conn.send('GET', `/${path}`);
  await f.next(`${path}-started`);
  sendStop(f);
  await f.next('signal');
  return { f, conn };
}

const stopSentAt = new WeakMap<Fixture, number>();

/** Sends the fixture its first stop signal, and notes when (for {@link pastSameStop}). */
export function sendStop(f: Fixture, signal: NodeJS.Signals = 'SIGTERM'): void {
  f.child.kill(signal);
  stopSentAt.set(f, performance.now());
}

/**
 * Resolves once a stop signal sent now is a second stop, not the same one: SAME_STOP_MS
 * after the first ({@link sendStop}'s), which the library takes as one Ctrl-C
 * delivered twice.
 */
export async function pastSameStop(f: Fixture): Promise<void> {
  const wait = (stopSentAt.get(f) ?? 0) + SAME_STOP_MS + 20 - performance.now();
  if (wait > 0) await delay(wait);
}
