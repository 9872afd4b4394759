/**
 * Real framework apps, created from their own packages and run from production builds
 * exactly as their docs say, under the master with no code change and no extra flag:
 * Next.js (`next start`), NestJS (`node dist/main.js`) and SvelteKit's adapter-node
 * (`node build`). Each is reloaded 5 times under keep-alive load: zero failed requests,
 * every generation served, no old worker killed at the drain deadline.
 *
 * The apps are installed and built once into a cache folder outside the repo (install.ts);
 * without the npm registry the tests are skipped and say why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster } from '../helpers/master.js';
import { freePort } from '../helpers/free-port.js';
import { prepareApp } from './install.js';
import { reloadUnderLoad } from './reload-under-load.js';

const RELOADS = 5;

interface Framework {
  name: string;
  /** The framework's own build, run once in the app folder. */
  build: string[];
  /** What goes after `--`; PORT is the port the master listens on. */
  command: (port: number) => string[];
}

const frameworks: Framework[] = [
  { name: 'next', build: ['./node_modules/.bin/next', 'build'], command: (port) => ['./node_modules/.bin/next', 'start', '-p', String(port)] },
  // Nest and SvelteKit read PORT, which the master sets to its first listener's port.
  { name: 'nest', build: ['./node_modules/.bin/tsc', '-p', 'tsconfig.json'], command: () => ['node', 'dist/main.js'] },
  { name: 'sveltekit', build: ['./node_modules/.bin/vite', 'build'], command: () => ['node', 'build'] },
];

for (const fw of frameworks) {
  test(`${fw.name} production build under hitless with no code change: ${RELOADS} reloads under load drop no request`, { timeout: 900_000 }, async (t) => {
    const app = prepareApp(fw.name, fw.build);
    if (app.skip !== undefined) return t.skip(app.skip);
    t.diagnostic(`${fw.name}: ${app.dir} (install ${app.installSeconds} s, build ${app.buildSeconds} s; 0 = cached)`);
    const port = await freePort();
    const master = await startMaster(t, {
      command: fw.command(port),
      listen: [`127.0.0.1:${port}`],
      workers: 2,
      cwd: app.dir,
    });
    const first = await fetch(`http://127.0.0.1:${port}/gen`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-generation'), '1');
    await first.text();

    await reloadUnderLoad(t, master, '/gen', RELOADS);
    const last = await fetch(`http://127.0.0.1:${port}/gen`);
    assert.equal(last.headers.get('x-generation'), String(1 + RELOADS), 'the last generation answers');
    await last.text();
    const stopped = await master.stop();
    assert.equal(stopped.signal, null);
    assert.equal(stopped.code, 0);
  });
}
