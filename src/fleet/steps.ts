/**
 * The remote steps of one host: upload (verified on arrival), `hitless release`, and
 * `hitless rollback`. Each returns what happened, including whether the host's `current`
 * may have changed, which is what the rollout needs to know to undo it.
 */
import { releaseScript, rollbackScript, uploadScript, currentScript } from './scripts.js';
import { lastLine, SSH_FAILED, type RunRemote } from './transport.js';
import type { FleetHost } from './types.js';

export interface StepFailure {
  code: string;
  message: string;
  output?: string[];
}

export type UploadResult = { ok: true } | ({ ok: false } & StepFailure);

/**
 * Streams the artifact into `remoteFile` on the host and checks its sha256 there.
 *
 * @example
 * const up = await upload(run, host, 'app.tgz', '/tmp/hitless-deploy-v2-app1.tgz', sha256);
 * if (!up.ok) console.error(up.message); // 'checksum mismatch on arrival: …'
 */
export async function upload(run: RunRemote, host: FleetHost, artifact: string, remoteFile: string, sha256: string): Promise<UploadResult> {
  const r = await run(host, uploadScript(remoteFile, sha256), artifact);
  if (r.code === 0) return { ok: true };
  const why = lastLine(r.stderr) || `exit ${r.code ?? r.signal}`;
  // Exit 65 is the script's checksum mismatch, whose message says so itself.
  return { ok: false, code: 'ERR_DEPLOY_UPLOAD', message: r.code === 65 ? why : `upload to ${remoteFile} failed: ${why}` };
}

/** What `hitless release --json` printed. */
interface ReleaseJson {
  status?: string;
  id?: string;
  code?: string;
  message?: string;
  output?: string[];
  outcome?: { generation?: number; durationMs?: number; error?: { code?: string } };
  /** `{ ok: false, error }`: hitless refused before switching, with its own code (main.ts, --json). */
  ok?: boolean;
  error?: { code?: string; message?: string };
}

export type ReleaseStep =
  | { ok: true; status: 'live' | 'skipped'; id: string; generation: number | undefined }
  | ({ ok: false; changed: boolean } & StepFailure);

function parseJson(stdout: string): ReleaseJson | undefined {
  const start = stdout.indexOf('{');
  if (start < 0) return undefined;
  try {
    return JSON.parse(stdout.slice(start)) as ReleaseJson;
  } catch {
    return undefined;
  }
}

/**
 * Runs `hitless release` on the host and reads its outcome. `changed` tells whether
 * `current` may now differ from before: false when hitless itself switched back (the
 * release did not go live) or never switched; true (or unknown, treated as true) otherwise.
 *
 * @example
 * const r = await release(run, host, 'hitless', '/tmp/hitless-deploy-v2-app1.tgz', 'v2');
 * // { ok: true, status: 'live', id: 'v2', generation: 7 } or { ok: false, changed: false, code: 'ERR_WORKER_EXITED', … }
 */
export async function release(run: RunRemote, host: FleetHost, hitless: string, remoteFile: string, id: string): Promise<ReleaseStep> {
  const r = await run(host, releaseScript(host, hitless, remoteFile, id));
  const json = parseJson(r.stdout);
  const tail = (r.stderr.trim() ? r.stderr.trim().split('\n') : []).slice(-20);
  if (r.code === 0 && json && (json.status === 'live' || json.status === 'skipped')) {
    return { ok: true, status: json.status, id: json.id ?? id, generation: json.outcome?.generation };
  }
  if (r.code === 0 && json?.status === 'no-master') {
    return { ok: false, changed: true, code: 'ERR_NO_MASTER', message: `current was switched to ${id} but no master runs there to serve it` };
  }
  if (json?.status === 'rolled-back') {
    const inner = json.outcome?.error?.code ?? json.code ?? 'ERR_RELEASE_ROLLED_BACK';
    return { ok: false, changed: false, code: inner, message: json.message ?? 'the release did not go live', output: json.output ?? [] };
  }
  if (r.code === SSH_FAILED) {
    return { ok: false, changed: true, code: 'ERR_DEPLOY_REMOTE', message: `lost the connection during the release (${lastLine(r.stderr) || 'ssh exited 255'}); its outcome there is unknown`, output: tail };
  }
  // `hitless: <message>` on stderr: refused before switching (busy, bad id, unsafe archive,
  // failed prepare), so current is as it was; rolling such a host "back" could undo someone
  // else's release. Anything else (killed, no hitless line) may have switched.
  const line = lastLine(r.stderr);
  const refused = line.startsWith('hitless: ');
  const message = line.replace(/^hitless: /, '') || `exit ${r.code ?? r.signal}`;
  // Its own code when it said one (--json): a failed prepare is ERR_RELEASE_PREPARE there.
  const own = json?.ok === false && refused ? json.error : undefined;
  return { ok: false, changed: !refused, code: own?.code ?? 'ERR_DEPLOY_REMOTE', message: own?.message ?? message, output: tail };
}

export type RollbackStep = { ok: true; generation: number | undefined } | ({ ok: false } & StepFailure);

/**
 * `hitless rollback <id>`: back to the release the host ran before the deploy.
 *
 * @example
 * await rollback(run, host, 'hitless', 'v1'); // { ok: true, generation: 8 }
 */
export async function rollback(run: RunRemote, host: FleetHost, hitless: string, id: string): Promise<RollbackStep> {
  const r = await run(host, rollbackScript(host, hitless, id));
  if (r.code === 0) return { ok: true, generation: parseJson(r.stdout)?.outcome?.generation };
  const json = parseJson(r.stdout);
  return {
    ok: false, code: json?.code ?? 'ERR_DEPLOY_REMOTE',
    message: json?.message ?? (lastLine(r.stderr).replace(/^hitless: /, '') || `exit ${r.code ?? r.signal}`),
    output: json?.output ?? [],
  };
}

/**
 * The release `current` names on the host now (undefined: none, or unknown).
 *
 * @example
 * await readCurrentRelease(run, host); // 'v1'
 */
export async function readCurrentRelease(run: RunRemote, host: FleetHost): Promise<string | undefined> {
  const r = await run(host, currentScript(host));
  return r.code === 0 ? (r.stdout.trim().replace(/^releases\//, '') || undefined) : undefined;
}
