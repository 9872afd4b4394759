/**
 * HAProxy in master-worker mode (`haproxy -W`) in front of N plain node workers, the way a
 * user runs it: the workers are the benchmark app started on their own ports (without the
 * in-app library: HAProxy, not the app, is what reloads here), HAProxy listens on the
 * target's port and balances round robin with keep-alive on both sides, and a reload is
 * SIGUSR2 to the master: it re-executes itself, forks a new worker that takes the listening
 * sockets over (`expose-fd listeners` on the stats socket: the seamless reload), and the old
 * worker soft-stops. `hard-stop-after 10s` gives it the drain budget hitless gets.
 *
 * With `idleCloseOnResponse`, `option idle-close-on-response` (HAProxy >= 2.6): during the
 * soft stop the old worker does not close idle client connections at once but waits for
 * their next request and answers it with `Connection: close` — no request lost to the close
 * race, but every connection is re-opened by its client.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childrenOf, cmdline, freePort, isAlive, run, spawnGroup, waitFor, waitForPort, type Spawned } from '../proc.js';
import { appEnv, appPath, type Target, type TargetOptions } from './target.js';

export const HAPROXY = '/usr/sbin/haproxy';

/** `haproxy -v`'s first line, or undefined when HAProxy is not installed. */
export async function haproxyVersion(): Promise<string | undefined> {
  try {
    const r = await run(HAPROXY, ['-v'], {}, 5000);
    return r.code === 0 ? /version (\S+)/.exec(r.stdout)?.[1] : undefined;
  } catch {
    return undefined;
  }
}

export class HaproxyTarget implements Target {
  readonly name: string;
  readonly port: number;
  private readonly dir = mkdtempSync(join(tmpdir(), 'hitless-bench-haproxy-'));
  private master: Spawned | undefined;
  private readonly backends: Spawned[] = [];

  constructor(private readonly opts: TargetOptions, private readonly idleCloseOnResponse = false) {
    this.port = opts.port;
    this.name = `HAProxy -W, ${opts.workers} node workers` + (idleCloseOnResponse ? ', idle-close-on-response' : '');
  }

  private config(ports: number[]): string {
    return [
      'global',
      // 2 descriptors per connection must fit in the open-files limit (20,000 here).
      '  maxconn 8000',
      '  hard-stop-after 10s',
      `  stats socket ${join(this.dir, 'admin.sock')} mode 600 level admin expose-fd listeners`,
      'defaults',
      '  mode http',
      '  option http-keep-alive',
      ...(this.idleCloseOnResponse ? ['  option idle-close-on-response'] : []),
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      '  timeout http-keep-alive 60s',
      'frontend fe',
      `  bind 127.0.0.1:${this.port}`,
      '  default_backend app',
      'backend app',
      '  balance roundrobin',
      ...ports.map((p, i) => `  server w${i + 1} 127.0.0.1:${p}`),
      '',
    ].join('\n');
  }

  async start(): Promise<void> {
    const ports: number[] = [];
    for (let i = 0; i < this.opts.workers; i++) {
      const port = await freePort();
      ports.push(port);
      this.backends.push(spawnGroup('node', [appPath], { env: appEnv({ ...this.opts, plainApp: true }, { PORT: String(port) }) }));
    }
    for (const p of ports) await waitForPort(p);
    const file = join(this.dir, 'haproxy.cfg');
    writeFileSync(file, this.config(ports));
    // -W: master-worker; -db: the master stays in the foreground (our child, its pid constant across reloads).
    this.master = spawnGroup(HAPROXY, ['-W', '-db', '-f', file]);
    await waitForPort(this.port, 20_000);
    await waitFor('HAProxy worker', () => this.servingPids().length >= 1, 20_000);
  }

  reload(): Promise<void> {
    if (!this.master) throw new Error('HAProxy is not running');
    process.kill(this.master.pid, 'SIGUSR2');
    return Promise.resolve();
  }

  /** HAProxy's worker processes (the master's children), which hold the client connections. */
  servingPids(): number[] {
    return this.master ? childrenOf(this.master.pid).filter((p) => cmdline(p).includes('haproxy')) : [];
  }

  supervisorPid(): number | undefined {
    return this.master && isAlive(this.master.pid) ? this.master.pid : undefined;
  }

  async stop(): Promise<void> {
    const all = [this.master, ...this.backends].filter((x): x is Spawned => x !== undefined);
    this.master = undefined;
    this.backends.length = 0;
    for (const s of all) {
      s.child.kill('SIGTERM');
      const timer = setTimeout(() => s.killGroup('SIGKILL'), 15_000);
      await s.exited;
      clearTimeout(timer);
      s.killGroup('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
