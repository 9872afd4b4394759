/**
 * Preflight: before anything changes anywhere, every host must be reachable, run
 * hitless, have its app folder with a running master and no release in progress, accept
 * the upload, and answer its health URL. All hosts are checked (in parallel) and every
 * problem is reported at once, so one run shows everything to fix.
 */
import { stat } from 'node:fs/promises';
import { HitlessError } from '../errors.js';
import { describeProbe, probeHealth, type Probe } from './health.js';
import { preflightScript, STATUS_MARKER } from './scripts.js';
import { hostKeyAdvice } from './hostkey.js';
import { lastLine, SSH_FAILED, type RunRemote } from './transport.js';
import type { FleetConfig, FleetHost } from './types.js';

/** What preflight knows of the artifact: to tell whether a release id a host already has holds it. */
export interface ArtifactIdentity {
  name: string;
  sha256: string;
  /** The content hash `hitless release` records for it (computed once, only when needed). */
  contentHash: () => Promise<string>;
}

export interface HostCheck {
  name: string;
  problems: string[];
  /** What `current` names (undefined: no release yet). */
  current: string | undefined;
  version: string | undefined;
  /** Health status before the deploy, when there is a health URL. */
  health: string | undefined;
}

/**
 * Parses preflightScript's output: its `key=value` lines, and what `hitless status` printed.
 *
 * @example
 * parseReport('appdir=ok\ncurrent=releases/v1\n--- hitless status\n{}\n').keys.get('current'); // 'releases/v1'
 */
export function parseReport(stdout: string): { keys: Map<string, string>; status: string } {
  const at = stdout.indexOf(`${STATUS_MARKER}\n`);
  const head = at < 0 ? stdout : stdout.slice(0, at);
  const keys = new Map<string, string>();
  for (const line of head.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) keys.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  return { keys, status: at < 0 ? '' : stdout.slice(at + STATUS_MARKER.length + 1) };
}

/**
 * `hitless status --json` → the master's version, or why there is none. hitless itself
 * always says why it failed (`{"ok":false,"error":…}` with --json, or a `hitless: ` line);
 * output without either came from something else: the shell (127: not found) or a wrapper
 * like `npx hitless`, which in a folder without the package exits 1 with npm's 404.
 */
function readStatus(text: string, exit: string | undefined): { version?: string; problem?: 'missing' | 'no-master' | 'access'; detail: string } {
  if (exit === '0') {
    try {
      const status = JSON.parse(text) as { version?: string };
      return { version: status.version ?? 'unknown', detail: '' };
    } catch {
      return { problem: 'no-master', detail: `unreadable status: ${lastLine(text)}` };
    }
  }
  const said = hitlessError(text);
  if (said !== undefined && exit !== '126' && exit !== '127') {
    return { problem: said.code === 'ERR_CONTROL_ACCESS' ? 'access' : 'no-master', detail: said.message };
  }
  return { problem: 'missing', detail: errorLine(text) || `exit ${exit}` };
}

/** What hitless said when it failed: the code and message of its --json error, else its `hitless: ` line. */
function hitlessError(text: string): { code?: string; message: string } | undefined {
  const lines = text.split('\n').map((l) => l.trim());
  for (const line of lines.filter((l) => l.startsWith('{"ok":false'))) {
    try {
      const error = (JSON.parse(line) as { error?: { code?: unknown; message?: unknown } }).error;
      if (typeof error?.message === 'string') return { message: error.message, ...(typeof error.code === 'string' ? { code: error.code } : {}) };
    } catch {
      // not hitless's line after all
    }
  }
  const message = lines.find((l) => l.startsWith('hitless: '))?.slice('hitless: '.length);
  return message === undefined ? undefined : { message };
}

/**
 * The line of a failed command's output that says why: npm ends with where its log is and
 * starts with a bare `code E404`, node starts a stack trace with a file position; the first
 * line naming an error is the cause, else the last line.
 */
function errorLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !/A complete log of this run|^npm (error|ERR!) code /.test(l));
  return lines.find((l) => /error/i.test(l)) ?? lines.at(-1) ?? '';
}

/**
 * Why the ssh key file `path` cannot be used, or undefined. ssh given a missing `-i` file
 * only warns, leaves it out and tries its default keys, so all the host says is
 * "Permission denied" (and the warning naming the file is not ssh's last line).
 */
async function keyFileProblem(path: string): Promise<string | undefined> {
  try {
    return (await stat(path)).isFile() ? undefined : 'is not a file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist on this machine' : `cannot be read (${code ?? String(err)})`;
  }
}

function reach(host: FleetHost, config: FleetConfig): string {
  if (config.exec !== undefined) return `through ${config.exec[0] ?? 'exec'}`;
  return `over ssh (${host.user ? `${host.user}@` : ''}${host.address}${host.port ? ` port ${host.port}` : ''})`;
}

/**
 * The checks of one host; `problems` is empty when it may be deployed to.
 *
 * @example
 * const c = await checkHost(host, config, 'v2', remoteRunner(config));
 * if (c.problems.length) console.error(c.problems);
 */
export async function checkHost(
  host: FleetHost, config: FleetConfig, id: string, run: RunRemote, probe: Probe = probeHealth, artifact?: ArtifactIdentity,
): Promise<HostCheck> {
  const check: HostCheck = { name: host.name, problems: [], current: undefined, version: undefined, health: undefined };
  const problem = (text: string): HostCheck => {
    check.problems.push(text);
    return check;
  };
  if (config.exec === undefined && host.identity !== undefined) {
    const why = await keyFileProblem(host.identity);
    if (why) {
      const key = host.identityFrom ?? 'deploy.ssh.identity';
      return problem(`${key}: ${host.identity} ${why}; ssh would leave it out and the host refuse the login ("Permission denied"): fix ${key}, or create that key and add its .pub to the host's authorized_keys`);
    }
  }
  const r = await run(host, preflightScript(host, config.hitless, config.uploadDir, id));
  if (r.code !== 0) {
    const why = lastLine(r.stderr) || `exit ${r.code ?? r.signal}`;
    if (r.code !== SSH_FAILED || config.exec !== undefined) return problem(`the remote command failed ${reach(host, config)}: ${why}`);
    // A first deploy to a host missing from known_hosts: ssh says only "Host key verification failed."
    const advice = await hostKeyAdvice(host, config, r.stderr);
    return problem(`cannot reach it ${reach(host, config)}: ${advice ? `${why.replace(/\.$/, '')}: ${advice}` : why}`);
  }
  const { keys: report, status: statusText } = parseReport(r.stdout);
  if (report.get('appdir') !== 'ok') return problem(`app folder ${host.appDir} does not exist there; create it with its hitless.json, or fix deploy.appDir`);
  const status = readStatus(statusText, report.get('status-exit'));
  if (status.problem === 'missing') {
    return problem(`hitless is not installed in ${host.appDir}, or \`${config.hitless}\` cannot run it there (${status.detail}); ` +
      'install the hitless package in that app folder (docs/deploy.md), or set deploy.hitless to a command that runs it');
  }
  check.version = status.version;
  check.current = report.get('current') || undefined;
  if (check.current !== undefined) check.current = check.current.replace(/^releases\//, '');
  const lock = report.get('lock');
  if (lock) problem(`a release operation (pid ${lock}) is running in ${host.appDir}; wait for it to finish`);
  if (status.problem === 'no-master') problem(`no hitless master answers for ${host.appDir} (${status.detail}); start it (systemd, hitless start) first: a deploy reloads a running master`);
  // A master runs, as another user (root under systemd while the deploy logs in as deploy).
  if (status.problem === 'access') problem(`the hitless master of ${host.appDir} runs as another user, whose control socket the deploy's user may not open (${status.detail}); log in as that user (deploy.ssh.user, or the host's "user"), or let the command become it (deploy.hitless: "sudo npx --no-install hitless"; docs/fleet.md)`);
  if (report.get('id-exists') && check.current !== id) {
    // A retry of a deploy that failed or was rolled back: hitless release replaces a release
    // of the same content that is not current (src/release/install.ts), so only other content stops it.
    const other = artifact === undefined ? '' : await otherContent(report.get('state'), id, artifact);
    if (other !== undefined) problem(`release ${id} already exists in ${host.appDir}/releases${other ? ` and ${other}` : ''}; give another --id`);
  } else if (report.get('id-exists') && artifact !== undefined) {
    // The id is the current release there: fine when it holds this artifact (hitless release
    // then skips it as identical); otherwise that host would refuse it after the upload, once
    // the canary has already switched.
    const other = await otherContent(report.get('state'), id, artifact);
    if (other) problem(`release ${id} is its current release but ${other}; give another --id`);
  }
  if (report.get('upload') !== 'ok') problem(`upload folder ${config.uploadDir} is missing or not writable; set deploy.uploadDir`);
  if (report.get('sum') !== 'ok') problem('neither sha256sum nor node is there to verify the upload');
  if (host.health !== undefined) {
    const h = await probe(host.health);
    check.health = describeProbe(h);
    if (!h.ok && h.status !== undefined) problem(`health ${host.health} answers ${check.health} before the deploy; fix the host first (or its deploy.health URL)`);
    else if (!h.ok) {
      problem(`health ${host.health} does not answer from this machine (${check.health}): hitless deploy probes it from where it runs, not on the host; ` +
        'fix deploy.health, or see docs/fleet.md "Health checks and bastions" when only the hosts can reach that address');
    }
  }
  return check;
}

/**
 * Checks every host; throws ERR_DEPLOY_PREFLIGHT listing each host's problems when any.
 *
 * @example
 * const checks = await preflight(config, 'v2', remoteRunner(config));
 * checks.get('app1')?.current; // 'v1'
 */
export async function preflight(
  config: FleetConfig, id: string, run: RunRemote, probe?: Probe, onCheck?: (c: HostCheck) => void, artifact?: ArtifactIdentity,
): Promise<Map<string, HostCheck>> {
  const checks = await Promise.all(config.hosts.map(async (host) => {
    const c = await checkHost(host, config, id, run, probe, artifact);
    onCheck?.(c);
    return c;
  }));
  const bad = checks.filter((c) => c.problems.length > 0);
  if (bad.length > 0) {
    const lines = bad.flatMap((c) => c.problems.map((p) => `${c.name}: ${p}`));
    throw new HitlessError('ERR_DEPLOY_PREFLIGHT',
      `preflight failed on ${bad.length} of ${checks.length} host${checks.length === 1 ? '' : 's'}, nothing was changed: ${lines.join('; ')}`,
      { details: { problems: lines, hosts: checks } });
  }
  return new Map(checks.map((c) => [c.name, c]));
}

/**
 * Why release `id` on a host (its record in the one-line state file `stateLine`) is not
 * `artifact`, or undefined when it is: the same archive (its sha256), or the same content
 * (the content hash `hitless release` recorded, compared with the artifact's).
 */
async function otherContent(stateLine: string | undefined, id: string, artifact: ArtifactIdentity): Promise<string | undefined> {
  let record: { hash?: unknown; artifactSha256?: unknown } | undefined;
  try {
    record = (JSON.parse(stateLine ?? '') as { releases?: Record<string, { hash?: unknown; artifactSha256?: unknown }> }).releases?.[id];
  } catch {
    record = undefined;
  }
  if (record?.artifactSha256 === artifact.sha256) return undefined;
  if (typeof record?.hash !== 'string') return `hitless has no record of what it holds, so it cannot tell whether it is ${artifact.name}`;
  if (record.hash === (await artifact.contentHash())) return undefined;
  const from = typeof record.artifactSha256 === 'string' ? ` (made from an archive with sha256 ${record.artifactSha256.slice(0, 12)})` : '';
  return `holds other content than ${artifact.name} (sha256 ${artifact.sha256.slice(0, 12)})${from}: hitless release would refuse it there after the upload`;
}
