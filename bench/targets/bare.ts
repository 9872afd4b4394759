/** Bare `node app.js` binding its own port: the baseline, and the naive stop-and-start. */
import { isAlive, spawnGroup, waitForPort, type Spawned } from '../proc.js';
import { appEnv, appPath, type Target, type TargetOptions } from './target.js';

export class BareTarget implements Target {
  readonly name: string;
  readonly port: number;
  private app: Spawned | undefined;

  /** naive: reload = SIGTERM, wait for exit, start again, wait until it accepts. */
  constructor(private readonly opts: TargetOptions, naive = false) {
    this.port = opts.port;
    this.name = (naive ? 'naive restart' : 'bare node') + (opts.plainApp ? ' (plain app)' : '');
    if (!naive) this.reload = undefined;
  }

  private async spawnApp(): Promise<void> {
    this.app = spawnGroup('node', [appPath], {
      env: appEnv(this.opts, { PORT: String(this.port) }),
    });
    await waitForPort(this.port);
  }

  start(): Promise<void> {
    return this.spawnApp();
  }

  reload?: () => Promise<void> = async () => {
    await this.stop();
    await this.spawnApp();
  };

  servingPids(): number[] {
    return this.app && isAlive(this.app.pid) ? [this.app.pid] : [];
  }

  supervisorPid(): number | undefined {
    return undefined;
  }

  async stop(): Promise<void> {
    const app = this.app;
    if (!app) return;
    this.app = undefined;
    app.child.kill('SIGTERM');
    const timer = setTimeout(() => app.killGroup('SIGKILL'), 15_000);
    await app.exited;
    clearTimeout(timer);
    app.killGroup('SIGKILL');
  }
}
