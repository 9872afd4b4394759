/**
 * PM2 7 in cluster mode, configured the way its docs recommend for graceful reloads:
 * `wait_ready` (an instance is online only after `process.send('ready')`),
 * `listen_timeout` 10 s (how long to wait for that), `kill_timeout` 10 s (SIGINT, then
 * SIGKILL only after 10 s: the same drain budget hitless gets). PM2 runs from its own
 * PM2_HOME in a temp folder, so it never touches a user's PM2, and is killed with
 * `pm2 kill` at the end. PM2 is a devDependency (AGPL): measured, never shipped.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childrenOf, isAlive, registerGroup, run, waitFor, waitForPort } from '../proc.js';
import { appPath, repoRoot, type Target, type TargetOptions } from './target.js';

const pm2Bin = join(repoRoot, 'node_modules', 'pm2', 'bin', 'pm2');

export function pm2Version(): string {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'pm2', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export class Pm2Target implements Target {
  readonly name: string;
  readonly port: number;
  private readonly home = mkdtempSync(join(tmpdir(), 'hitless-bench-pm2-'));
  private daemon: number | undefined;

  constructor(private readonly opts: TargetOptions) {
    this.port = opts.port;
    this.name = `PM2 cluster ${opts.workers}i` + (opts.plainApp ? ' (plain app)' : '');
  }

  private pm2(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return run('node', [pm2Bin, ...args], { env: { ...process.env, PM2_HOME: this.home }, cwd: this.home }, 120_000);
  }

  async start(): Promise<void> {
    const config = {
      apps: [
        {
          name: 'bench',
          script: appPath,
          exec_mode: 'cluster',
          instances: this.opts.workers,
          wait_ready: true,
          listen_timeout: 10_000,
          kill_timeout: 10_000,
          autorestart: true,
          env: { PORT: String(this.port), HANDLER_MS: String(this.opts.handlerMs), ...(this.opts.plainApp ? { BENCH_APP_PLAIN: '1' } : {}) },
        },
      ],
    };
    const file = join(this.home, 'ecosystem.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    const r = await this.pm2('start', file);
    const pidText = (() => {
      try {
        return readFileSync(join(this.home, 'pm2.pid'), 'utf8');
      } catch {
        return '';
      }
    })();
    this.daemon = Number(pidText) || undefined;
    // The daemon detaches into its own session: have the harness kill that group too.
    if (this.daemon) registerGroup(this.daemon);
    if (r.code !== 0 || !this.daemon) throw new Error(`pm2 start failed (${r.code}): ${r.stdout}${r.stderr}`);
    await waitForPort(this.port, 30_000);
    await waitFor('PM2 instances', () => this.servingPids().length >= this.opts.workers, 30_000);
  }

  async reload(): Promise<void> {
    const r = await this.pm2('reload', 'bench');
    if (r.code !== 0) throw new Error(`pm2 reload exited ${r.code}: ${r.stdout}${r.stderr}`);
  }

  servingPids(): number[] {
    return this.daemon ? childrenOf(this.daemon) : [];
  }

  supervisorPid(): number | undefined {
    return this.daemon && isAlive(this.daemon) ? this.daemon : undefined;
  }

  async stop(): Promise<void> {
    try {
      await this.pm2('kill');
    } finally {
      if (this.daemon) {
        try {
          process.kill(-this.daemon, 'SIGKILL');
        } catch {
          // gone after pm2 kill
        }
      }
      rmSync(this.home, { recursive: true, force: true });
    }
  }
}
