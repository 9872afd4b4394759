/**
 * An app folder for the canary tests (hitless.json with a `canary` object, the behaving
 * fixture as command) and a real master started on it through the CLI; everything is
 * removed after the test.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { CanaryConfig } from '../../src/config/types.js';
import type { StatusSnapshot } from '../../src/core/types.js';
import { controlRequest } from '../../src/control/client.js';
import { fixture, startMaster, type MasterProcess } from '../helpers/master.js';

export interface CanaryApp {
  master: MasterProcess;
  appDir: string;
  /** What the next generation started from the app folder does (behave.json; see the fixture). */
  behave(b: { errorEvery?: number; delayMs?: number }): void;
  status(): Promise<StatusSnapshot>;
}

export function appFolder(t: TestContext, config: Record<string, unknown>): string {
  const appDir = mkdtempSync(join(tmpdir(), 'hitless-canary-'));
  t.after(() => rmSync(appDir, { recursive: true, force: true }));
  writeFileSync(join(appDir, 'hitless.json'), JSON.stringify({ command: ['node', fixture('canary/app.js')], drainTimeout: '5s', ...config }));
  return appDir;
}

export async function startCanaryApp(
  t: TestContext, options: { workers?: number; canary?: Partial<CanaryConfig> | Record<string, unknown>; config?: Record<string, unknown>; appDir?: string } = {},
): Promise<CanaryApp> {
  const appDir = options.appDir ?? appFolder(t, { canary: options.canary ?? {}, ...options.config });
  const master = await startMaster(t, { command: [], args: ['--config', join(appDir, 'hitless.json')], workers: options.workers ?? 2, cwd: appDir });
  return {
    master,
    appDir,
    behave: (b) => writeFileSync(join(appDir, 'behave.json'), JSON.stringify(b)),
    status: async () => (await controlRequest(master.runDir, 'status')) as StatusSnapshot,
  };
}
