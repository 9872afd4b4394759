/**
 * Three "hosts" on this machine: app folders h1, h2, h3, each with its own hitless master
 * listening on 127.0.0.2, 127.0.0.3 and 127.0.0.4 (same port), all on release v1. They are
 * reached through the test's sshd on 127.0.0.1; a host's health URL is its own 127.0.0.x
 * address. Masters are tuned for short tests: one worker, a 2 s drain.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as tar from 'tar';
import { shellQuote } from '../../src/fleet/scripts.js';
import { cli, root, runCli, sourceFixture, trackMaster, type MasterProcess } from '../helpers/master.js';
import { freePort, type Sshd } from './sshd.js';

export const HITLESS_LIB = pathToFileURL(join(root, 'build', 'src', 'index.js')).href;
/** How the hosts run hitless: this checkout's build. */
export const REMOTE_HITLESS = `${shellQuote(process.execPath)} ${shellQuote(cli)}`;

export interface TestHost {
  name: string;
  ip: string;
  appDir: string;
  health: string;
  master: MasterProcess;
}

export interface Cluster {
  dir: string;
  port: number;
  hosts: TestHost[];
  uploads: string;
}

/** A release folder packed as .tgz: `server` (a fixture file) as server.mjs, plus VERSION. */
export async function buildArtifact(dir: string, version: string, server = 'release/server.mjs'): Promise<string> {
  const src = join(dir, 'builds', version);
  await mkdir(src, { recursive: true });
  await copyFile(sourceFixture(server), join(src, 'server.mjs'));
  await writeFile(join(src, 'VERSION'), `${version}\n`);
  const file = join(dir, 'builds', `${version}.tgz`);
  await tar.c({ gzip: true, file, cwd: src, portable: true }, ['.']);
  return file;
}

async function startHost(t: TestContext, dir: string, index: number, port: number, v1: string): Promise<TestHost> {
  const name = `h${index + 1}`;
  const ip = `127.0.0.${index + 2}`;
  const appDir = join(dir, name);
  await mkdir(appDir);
  await writeFile(join(appDir, 'hitless.json'), JSON.stringify({
    command: [process.execPath, 'server.mjs'], listen: [`${ip}:${port}`], workers: 1,
    readyTimeout: '10s', drainTimeout: '2s', runDir: 'run', logFormat: 'json', env: { HITLESS_LIB },
  }, null, 2));
  await writeFile(join(appDir, 'host-config.json'), JSON.stringify({ name }));
  const first = await runCli(['release', v1, '--id', 'v1'], {}, appDir);
  if (first.code !== 0) throw new Error(`release v1 on ${name}: ${first.stderr}`);
  const child = spawn(process.execPath, [cli, 'start', '--config', join(appDir, 'hitless.json')], { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'] });
  const master = trackMaster(t, child, join(appDir, 'run'));
  await master.waitEvent('master-ready');
  return { name, ip, appDir, health: `http://${ip}:${port}/healthz`, master };
}

/** `count` hosts (three by default) on v1, masters running; everything removed after the test. */
export async function startCluster(t: TestContext, count = 3): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'hitless-fleet-'));
  try {
    const port = await freePort('127.0.0.2');
    const v1 = await buildArtifact(dir, 'v1');
    const uploads = join(dir, 'uploads');
    await mkdir(uploads);
    const hosts = await Promise.all(Array.from({ length: count }, (_, i) => startHost(t, dir, i, port, v1)));
    return { dir, port, hosts, uploads };
  } finally {
    // Registered after the masters' own cleanup, so it runs once they are gone.
    t.after(() => rm(dir, { recursive: true, force: true }));
  }
}

/** Writes the workstation's hitless.json with the deploy section for `hosts`; returns its path. */
export async function writeDeployConfig(cluster: Cluster, sshd: Sshd, overrides: { address?: Record<string, string>; settle?: string; file?: string } = {}): Promise<string> {
  const dir = join(cluster.dir, 'workstation');
  await mkdir(dir, { recursive: true });
  const path = join(dir, overrides.file ?? 'hitless.json');
  await writeFile(path, JSON.stringify({
    deploy: {
      hosts: cluster.hosts.map((h) => ({ name: h.name, address: overrides.address?.[h.name] ?? '127.0.0.1', appDir: h.appDir, health: h.health })),
      hitless: REMOTE_HITLESS,
      ssh: { user: 'root', port: sshd.port, identity: sshd.key, args: sshd.clientArgs },
      batch: 1,
      settle: overrides.settle ?? '500ms',
      uploadDir: cluster.uploads,
    },
  }, null, 2));
  return path;
}

/** The release a host's `current` names. */
export async function currentOf(host: TestHost): Promise<string> {
  return (await readlink(join(host.appDir, 'current'))).replace(/^releases\//, '');
}

/** Release folders installed on a host, sorted. */
export async function releasesOf(host: TestHost): Promise<string[]> {
  return (await readdir(join(host.appDir, 'releases'))).filter((n) => !n.startsWith('.')).sort();
}

/** The X-Release header a host's own listener answers with (a fresh connection). */
export function servedBy(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.headers['x-release'])));
    }).on('error', reject);
  });
}
