/**
 * For the upgrade's end-to-end tests: copies of the built hitless package (another version
 * string, or a broken build), and a master started the way an installed one is, through a
 * `bin/hitless` symlink that an install later points elsewhere.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { cli, root, trackMaster, type MasterProcess } from '../helpers/master.js';

/**
 * Copies the built package (build/src, package.json with `version`; node_modules linked)
 * to `dir` and returns its CLI entry. `broken`: the entry throws as it loads.
 */
export function copyHitless(dir: string, version: string, broken = false): string {
  mkdirSync(join(dir, 'build'), { recursive: true });
  cpSync(join(root, 'build', 'src'), join(dir, 'build', 'src'), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, version }, null, 2));
  const main = join(dir, 'build', 'src', 'cli', 'main.js');
  if (broken) writeFileSync(main, `throw new Error('this build of hitless is broken (${version})');\n${readFileSync(main, 'utf8')}`);
  return main;
}

/** Points the `bin/hitless` symlink at `target` as an install does: a new link renamed over the old one. */
export function pointAt(bin: string, target: string): void {
  symlinkSync(target, `${bin}.new`);
  renameSync(`${bin}.new`, bin);
}

/**
 * The test runner's environment without what says a service manager runs it (systemd's
 * INVOCATION_ID, supervisord's SUPERVISOR_*): the master under test runs detached, where an
 * upgrade is allowed (src/master/pid-guard.ts), wherever the suite itself runs.
 */
function detached(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of Object.keys(out)) if (k === 'INVOCATION_ID' || k === 'NOTIFY_SOCKET' || k.startsWith('SUPERVISOR_')) delete out[k];
  return out;
}

export interface UpgradableMaster {
  master: MasterProcess;
  /** The temp folder (app cwd, run dir, pid file, copies); removed after the test. */
  dir: string;
  bin: string;
  runDir: string;
  pidFile: string;
}

/**
 * Starts `node <dir>/bin/hitless start …` (the symlink pointing at this build) and waits
 * until it serves. Cleanup: the master, every worker the log names, every new master an
 * upgrade started (their pids are in the log), the folder.
 */
export async function startFromSymlink(t: TestContext, o: {
  command: string[]; workers: number; args?: string[]; env?: Record<string, string>;
  /** `--listen` values (default one on 127.0.0.1:0). */
  listen?: string[];
  /** Files to write in the app folder first (a hitless.json). */
  files?: Record<string, string>;
  /** False: no `--pid-file` flag (a hitless.json may name one). */
  pidFileFlag?: boolean;
}): Promise<UpgradableMaster> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-upgrade-'));
  for (const [name, text] of Object.entries(o.files ?? {})) writeFileSync(join(dir, name), text);
  const bin = join(dir, 'bin', 'hitless');
  mkdirSync(join(dir, 'bin'));
  symlinkSync(cli, bin);
  const runDir = join(dir, 'run');
  const pidFile = join(dir, 'master.pid');
  const child = spawn(process.execPath, [
    bin, 'start', '--log-format', 'json', '--run-dir', runDir, ...(o.pidFileFlag === false ? [] : ['--pid-file', pidFile]), '--workers', String(o.workers),
    ...(o.listen ?? ['127.0.0.1:0']).flatMap((l) => ['--listen', l]), ...(o.args ?? []), '--', ...o.command,
  ], { cwd: dir, env: { ...detached(process.env), ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // Registered before trackMaster's: node:test runs after-hooks in order, and the folder goes last.
  t.after(() => {
    for (const r of master.records) {
      if (r.event !== 'upgrade-phase' || typeof r.pid !== 'number') continue;
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });
  const master = trackMaster(t, child, runDir, dir);
  await master.waitEvent('master-ready');
  return { master, dir, bin, runDir, pidFile };
}
