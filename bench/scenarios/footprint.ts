/**
 * Scenario 4: footprint and leaks. The supervisor's resident memory (hitless master vs
 * PM2 daemon, each with 2 workers, idle), and the hitless master's fd count and RSS
 * before and after many reloads in a row (most by SIGHUP, every tenth through
 * `hitless reload` so the control socket path is exercised too).
 */
import { fdCount, freePort, rssBytes } from '../proc.js';
import { HitlessTarget } from '../targets/hitless.js';
import { Pm2Target } from '../targets/pm2.js';
import { reloadAndWait, type Target } from '../targets/target.js';

export interface FootprintResult {
  hitlessMasterRssMb: number;
  pm2DaemonRssMb: number;
  leak: {
    reloads: number;
    warmup: number;
    fdsBefore: number;
    fdsAfter: number;
    rssBeforeMb: number;
    rssAfterMb: number;
    rssGrowthMb: number;
    /** RSS right after start, before the warm-up reloads. */
    rssAtStartMb: number;
  };
}

const mb = (b: number): number => b / (1024 * 1024);

async function idleRss(t: Target): Promise<number> {
  await t.start();
  try {
    const pid = t.supervisorPid();
    if (!pid) throw new Error(`${t.name} has no supervisor pid`);
    return mb(rssBytes(pid));
  } finally {
    await t.stop();
  }
}

export async function footprint(reloads: number, warmup: number, log: (l: string) => void): Promise<FootprintResult> {
  const hitlessMasterRssMb = await idleRss(new HitlessTarget({ port: await freePort(), handlerMs: 0, workers: 2 }));
  const pm2DaemonRssMb = await idleRss(new Pm2Target({ port: await freePort(), handlerMs: 0, workers: 2 }));
  log(`  idle RSS: hitless master ${hitlessMasterRssMb.toFixed(1)} MB, PM2 daemon ${pm2DaemonRssMb.toFixed(1)} MB`);

  const sighup = new HitlessTarget({ port: await freePort(), handlerMs: 0, workers: 2 }, 'sighup');
  await sighup.start();
  try {
    const pid = sighup.supervisorPid()!;
    const rssAtStart = rssBytes(pid);
    for (let i = 0; i < warmup; i++) await reloadAndWait(sighup);
    const fdsBefore = fdCount(pid);
    const rssBefore = rssBytes(pid);
    for (let i = 1; i <= reloads; i++) {
      sighup.method = i % 10 === 0 ? 'cli' : 'sighup';
      await reloadAndWait(sighup);
      if (i % 100 === 0) log(`  ${i} reloads: fds ${fdCount(pid)}, RSS ${mb(rssBytes(pid)).toFixed(1)} MB`);
    }
    const fdsAfter = fdCount(pid);
    const rssAfter = rssBytes(pid);
    return {
      hitlessMasterRssMb,
      pm2DaemonRssMb,
      leak: {
        reloads, warmup, fdsBefore, fdsAfter,
        rssBeforeMb: mb(rssBefore), rssAfterMb: mb(rssAfter), rssGrowthMb: mb(rssAfter - rssBefore), rssAtStartMb: mb(rssAtStart),
      },
    };
  } finally {
    await sighup.stop();
  }
}
