/**
 * Running a script on a host: OpenSSH by default (BatchMode, so a missing key fails at
 * once instead of prompting), or the `deploy.exec` template (docker exec, kubectl exec,
 * a local `sh -c` in tests). Either way the script is one argument run by `sh -c` there
 * and the artifact, when there is one, travels on stdin: no scp/sftp needed.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../process-alive.js';
import { shellQuote } from './scripts.js';
import type { FleetConfig, FleetHost } from './types.js';

export interface RemoteResult {
  /** Exit code; ssh itself exits 255 when it cannot connect or the connection breaks. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` on `host`, streaming the file `input` (if given) to its stdin. */
export type RunRemote = (host: FleetHost, script: string, input?: string) => Promise<RemoteResult>;

/** ssh's own exit code for "could not connect / connection lost". */
export const SSH_FAILED = 255;

/**
 * Seconds an ssh connection master stays up after its last session. Short, because nothing
 * else ends the master of a deploy killed with SIGKILL (it runs on, detached, holding its
 * login on the host): 60 s left it up for a minute after the last session of such a deploy.
 * A host's steps that follow one another share the connection; one idle for longer (a host
 * waiting for the batches before it) logs in again.
 */
export const CONTROL_PERSIST_S = 10;

/** Prefix of a deploy's folder of ssh control sockets in the temp folder, followed by its pid. */
const CONTROL_DIR_PREFIX = 'hitless-ssh-';

/**
 * The ssh options a deploy logs in to `host` with (user, port, key), before `ssh.args`.
 *
 * @example
 * loginOptions({ user: 'deploy', port: 2222, identity: '/k', … }); // ['-l', 'deploy', '-p', '2222', '-i', '/k', '-o', 'IdentitiesOnly=yes']
 */
export function loginOptions(host: Pick<FleetHost, 'user' | 'port' | 'identity'>): string[] {
  return [
    ...(host.user !== undefined ? ['-l', host.user] : []),
    ...(host.port !== undefined ? ['-p', String(host.port)] : []),
    ...(host.identity !== undefined ? ['-i', host.identity, '-o', 'IdentitiesOnly=yes'] : []),
  ];
}

/**
 * The argv that runs `script` on `host`.
 *
 * @example
 * remoteArgv(host, config, 'hitless --version');
 * // ['ssh', '-o', 'BatchMode=yes', …, '-p', '2222', '--', 'app1', "sh -c 'hitless --version'"]
 */
export function remoteArgv(host: FleetHost, config: Pick<FleetConfig, 'exec' | 'sshArgs'>, script: string, controlDir?: string): string[] {
  if (config.exec !== undefined) {
    return config.exec.map((arg) => (arg === '{script}' ? script : arg
      .replaceAll('{host}', host.address).replaceAll('{name}', host.name).replaceAll('{script}', script)));
  }
  return [
    'ssh',
    // BatchMode: never prompt (a deploy has no one to answer). ServerAlive: notice a dead
    // link within a minute instead of waiting on TCP for hours.
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4',
    ...loginOptions(host),
    // One connection per host for the steps of a deploy (preflight, upload, release, rollback),
    // not one handshake per step. ControlPersist is what ends the master of a deploy killed
    // before close(): it outlives its last session by that much (see CONTROL_PERSIST_S).
    ...(controlDir !== undefined ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${join(controlDir, '%C')}`, '-o', `ControlPersist=${CONTROL_PERSIST_S}`] : []),
    ...config.sshArgs,
    '--', host.address,
    // ssh hands the command to the user's login shell; `sh -c` makes it POSIX sh whatever that is.
    `sh -c ${shellQuote(script)}`,
  ];
}

/**
 * A {@link RunRemote} over the configured transport (without connection sharing; see
 * {@link openRemote}).
 *
 * @example
 * const run = remoteRunner(config);
 * const r = await run(host, 'readlink /srv/app/current');
 */
export function remoteRunner(config: Pick<FleetConfig, 'exec' | 'sshArgs'>, controlDir?: string): RunRemote {
  return (host, script, input) => new Promise((resolve) => {
    const [program, ...args] = remoteArgv(host, config, script, controlDir);
    const child = spawn(program as string, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (input !== undefined && child.stdin) {
      // The far side may exit early (full disk, refused login): its exit code says why,
      // so a broken pipe here is not an error of its own.
      child.stdin.on('error', () => {});
      createReadStream(input).on('error', (err) => child.stdin?.destroy(err)).pipe(child.stdin);
    }
    child.on('error', (err) => resolve({ code: 127, signal: null, stdout, stderr: `${stderr}cannot run ${program}: ${err.message}\n` }));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export interface Remote {
  run: RunRemote;
  /** Closes the shared ssh connections and removes their sockets. */
  close(): Promise<void>;
}

/**
 * The transport for one deploy: over ssh, each host's steps share one connection (an
 * OpenSSH ControlMaster whose socket lives in a private temp folder), closed by `close()`.
 *
 * @example
 * const remote = await openRemote(config);
 * try { await remote.run(host, 'true'); } finally { await remote.close(); }
 */
export async function openRemote(config: Pick<FleetConfig, 'exec' | 'sshArgs'>): Promise<Remote> {
  if (config.exec !== undefined) return { run: remoteRunner(config), close: async () => {} };
  await removeDeadDeploysControlDirs();
  const dir = await mkdtemp(join(tmpdir(), `${CONTROL_DIR_PREFIX}${process.pid}-`));
  // %C expands to 40 hex characters; a socket path must fit sun_path (108 bytes).
  if (Buffer.byteLength(join(dir, 'x'.repeat(40))) > 100) {
    await rm(dir, { recursive: true, force: true });
    return { run: remoteRunner(config), close: async () => {} };
  }
  return { run: remoteRunner(config, dir), close: () => closeControlDir(dir) };
}

/** Asks the connection masters with sockets in `dir` to exit, then removes the folder. */
async function closeControlDir(dir: string): Promise<void> {
  const sockets = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(sockets.map((name) => new Promise<void>((resolve) => {
    // With a literal ControlPath the destination is never contacted; "-F /dev/null" keeps the user's config out of it.
    spawn('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(dir, name)}`, '-O', 'exit', 'hitless-deploy'], { stdio: 'ignore' })
      .on('error', () => resolve()).on('close', () => resolve());
  })));
  await rm(dir, { recursive: true, force: true });
}

/**
 * The control folders of this user's deploys that died before close() (SIGKILL, a crash):
 * `hitless-ssh-<pid>-*` whose pid is gone. Their masters, if still up, are asked to exit
 * and the folders removed; any other folder (a running deploy's, another user's) is left.
 */
async function removeDeadDeploysControlDirs(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  const uid = process.getuid?.();
  await Promise.all(names.map(async (name) => {
    const pid = new RegExp(`^${CONTROL_DIR_PREFIX}(\\d+)-[^/]+$`).exec(name)?.[1];
    if (pid === undefined || processAlive(Number(pid))) return;
    const dir = join(tmpdir(), name);
    const st = await lstat(dir).catch(() => undefined);
    if (!st?.isDirectory() || (uid !== undefined && st.uid !== uid)) return;
    await closeControlDir(dir).catch(() => {});
  }));
}

/**
 * The last non-empty line of a command's output, for one-line messages.
 *
 * @example
 * lastLine('Warning: …\nssh: connect to host x port 22: Connection refused\n'); // 'ssh: connect to host x port 22: Connection refused'
 */
export function lastLine(text: string): string {
  return text.trim().split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
}
