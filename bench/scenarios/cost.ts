/**
 * Scenario 3: reload cost. The time from the reload request to the new generation
 * serving and the old one gone, over back-to-back reloads without load, next to the
 * app's own boot time (spawn → serving, measured alone) so the supervisor's own cost
 * is the difference.
 */
import { freePort, now, spawnGroup, waitFor } from '../proc.js';
import { median } from '../stats.js';
import { appPath, reloadAndWait } from '../targets/target.js';
import { HitlessTarget } from '../targets/hitless.js';
import { makeTarget, type TargetKind } from './reload.js';

export interface CostRow {
  target: string;
  kind: TargetKind;
  workers: number;
  reloads: number;
  medianMs: number;
  maxMs: number;
  /** medianMs minus the app's median boot time. */
  beyondBootMs: number;
  samples: number[];
  /** hitless only: the master's own reload duration (its reload-done log line), median. */
  masterMedianMs?: number;
  masterBeyondBootMs?: number;
}

/** The app's own boot: spawn `node app.js` until it says it serves. */
export async function appBoot(times: number): Promise<{ medianMs: number; maxMs: number; samples: number[] }> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const port = await freePort();
    const t0 = now();
    const app = spawnGroup('node', [appPath], { env: { ...process.env, PORT: String(port) } });
    try {
      await new Promise<void>((resolve, reject) => {
        const onData = (): void => {
          if (app.output().includes('serving')) resolve();
        };
        app.child.stderr?.on('data', onData);
        app.exited.then(() => reject(new Error(`app exited while booting: ${app.output()}`)), reject);
      });
      samples.push(now() - t0);
    } finally {
      app.killGroup('SIGKILL');
      await app.exited;
    }
  }
  return { medianMs: median(samples), maxMs: Math.max(...samples), samples };
}

export async function reloadCost(kind: TargetKind, workers: number, reloads: number, bootMs: number): Promise<CostRow> {
  const target = makeTarget(kind, { port: await freePort(), handlerMs: 0, workers });
  try {
    await target.start();
    const samples: number[] = [];
    const master: number[] = [];
    for (let i = 0; i < reloads; i++) {
      const doneBefore = target instanceof HitlessTarget ? target.events('reload-done').length : 0;
      const r = await reloadAndWait(target);
      samples.push(r.completeAt - r.requestedAt);
      // The master reports a reload done once its new workers stayed ready for `stayReady`
      // (1 s), well after the switch measured above: the next reload waits for that, or it
      // would measure the queue behind this one's wait, not a reload.
      if (target instanceof HitlessTarget) await waitFor(`${target.name}: reload-done`, () => target.events('reload-done').length > doneBefore, 30_000, 5);
      const own = target instanceof HitlessTarget ? target.lastReloadMs() : undefined;
      if (own !== undefined) master.push(own);
    }
    const m = median(samples);
    const row: CostRow = { target: target.name, kind, workers, reloads, medianMs: m, maxMs: Math.max(...samples), beyondBootMs: m - bootMs, samples };
    if (master.length) {
      row.masterMedianMs = median(master);
      row.masterBeyondBootMs = row.masterMedianMs - bootMs;
    }
    return row;
  } finally {
    await target.stop().catch(() => undefined);
  }
}
