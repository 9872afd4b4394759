/**
 * Scenario 7 (issue 23): what Node's compile cache saves a booting worker. A process of the
 * app is started alone, without load, `boots` times with NODE_COMPILE_CACHE pointing at one
 * folder (the first boot fills it, the others read it, as generations after the first do
 * under the master) and `boots` times without; measured: spawn → first answer to `path`,
 * and the CPU time (user + system, /proc) the process had used by then. Run for each Node
 * binary given (`--nodes a,b`; the cache exists from Node 22.1, older versions ignore it),
 * for the Next.js app of the framework tests and the benchmark app.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, now, run, sleep, spawnGroup, waitFor } from '../proc.js';
import { median } from '../stats.js';
import { cpuMs } from '../targets/hitless.js';
import { appPath } from '../targets/target.js';

export interface BootRow {
  app: string;
  node: string;
  cache: 'off' | 'on';
  boots: number;
  /** Spawn → first answer, ms (median, max); with the cache, the first (filling) boot is left out. */
  readyMs: { median: number; max: number };
  cpuMs: { median: number; max: number };
  /** The boot that filled the cache (cache on only). */
  firstFill?: { readyMs: number; cpuMs: number };
  /** Size of the cache folder afterwards, bytes. */
  cacheBytes?: number;
}

interface App {
  name: string;
  command: (node: string, port: number) => string[];
  cwd: string | undefined;
  path: string;
  env: Record<string, string>;
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? folderBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

function answers(port: number, path: string): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}${path}`).then(async (r) => {
    await r.arrayBuffer();
    return r.status < 500;
  }, () => false);
}

async function oneBoot(app: App, node: string, cache: string | undefined): Promise<{ readyMs: number; cpuMs: number }> {
  const port = await freePort();
  const [cmd, ...args] = app.command(node, port) as [string, ...string[]];
  const env: NodeJS.ProcessEnv = { ...process.env, ...app.env, PORT: String(port) };
  delete env.NODE_COMPILE_CACHE;
  if (cache) env.NODE_COMPILE_CACHE = cache;
  const t0 = now();
  const s = spawnGroup(cmd, args, { env, ...(app.cwd ? { cwd: app.cwd } : {}) });
  try {
    await waitFor(`${app.name} to answer`, () => answers(port, app.path), 60_000, 5);
    const readyMs = now() - t0;
    return { readyMs, cpuMs: cpuMs(s.pid) ?? Number.NaN };
  } finally {
    // A graceful exit: Node writes its compile cache when the process exits (the master's
    // workers also write it at READY, through the library's ready(), from Node 22.10).
    s.child.kill('SIGTERM');
    const timer = setTimeout(() => s.killGroup('SIGKILL'), 10_000);
    await s.exited;
    clearTimeout(timer);
    s.killGroup('SIGKILL');
  }
}

const spread = (xs: number[]): { median: number; max: number } => ({ median: median(xs), max: Math.max(...xs) });

/** Boots each app on each Node, `boots` times without and with the compile cache. */
export async function bootCost(nodes: string[], boots: number, nextDir: string | undefined, log: (l: string) => void): Promise<BootRow[]> {
  const apps: App[] = [
    ...(nextDir ? [{
      name: 'Next.js next start', cwd: nextDir, path: '/gen', env: { NEXT_TELEMETRY_DISABLED: '1' },
      command: (node: string, port: number) => [node, 'node_modules/next/dist/bin/next', 'start', '-p', String(port)],
    }] : []),
    { name: 'benchmark app', cwd: undefined, path: '/', env: {}, command: (node: string) => [node, appPath] },
  ];
  const rows: BootRow[] = [];
  for (const node of nodes) {
    const version = (await run(node, ['--version'])).stdout.trim();
    for (const app of apps) {
      // Alternate off and on, so drift of the machine's load falls on both.
      const dir = mkdtempSync(join(tmpdir(), 'hitless-bench-cc-'));
      const fill = await oneBoot(app, node, dir);
      const off: Array<{ readyMs: number; cpuMs: number }> = [];
      const on: Array<{ readyMs: number; cpuMs: number }> = [];
      for (let i = 0; i < boots; i++) {
        off.push(await oneBoot(app, node, undefined));
        on.push(await oneBoot(app, node, dir));
        await sleep(100);
      }
      const cacheBytes = folderBytes(dir);
      rmSync(dir, { recursive: true, force: true });
      rows.push({ app: app.name, node: version, cache: 'off', boots, readyMs: spread(off.map((x) => x.readyMs)), cpuMs: spread(off.map((x) => x.cpuMs)) });
      rows.push({ app: app.name, node: version, cache: 'on', boots, readyMs: spread(on.map((x) => x.readyMs)), cpuMs: spread(on.map((x) => x.cpuMs)), firstFill: fill, cacheBytes });
      for (const r of rows.slice(-2)) {
        log(`  ${r.app}, node ${r.node}, cache ${r.cache}: ready ${Math.round(r.readyMs.median)} ms (max ${Math.round(r.readyMs.max)}), CPU ${Math.round(r.cpuMs.median)} ms (max ${Math.round(r.cpuMs.max)})` +
          (r.firstFill ? `; filling boot ${Math.round(r.firstFill.readyMs)} ms / ${Math.round(r.firstFill.cpuMs)} ms CPU; cache ${((r.cacheBytes ?? 0) / 1e6).toFixed(1)} MB` : ''));
      }
    }
  }
  return rows;
}
