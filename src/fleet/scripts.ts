/**
 * The POSIX sh scripts `hitless deploy` runs on each host. Each is one string handed to
 * `sh -c` on the far side (ssh or the exec template), so the only local-to-remote
 * boundary is {@link shellQuote}; every value from the config or the command line goes
 * through it. The remote side needs nothing but sh, coreutils and hitless itself.
 */
import type { FleetHost } from './types.js';

/**
 * Quotes `value` as one shell word (single quotes; a quote inside becomes '\'').
 *
 * @example
 * shellQuote("it's"); // 'it'\''s'
 */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** sha256 of a file with node, where sha256sum is missing (busybox images, macOS). */
const NODE_SHA256 =
  'const h=require("crypto").createHash("sha256");require("fs").createReadStream(process.argv[1]).on("data",(d)=>h.update(d)).on("end",()=>console.log(h.digest("hex")))';

/** The line after which preflightScript prints `hitless status --json` (or its error). */
export const STATUS_MARKER = '--- hitless status';

/**
 * Read-only checks, printed as `key=value` lines, then {@link STATUS_MARKER} and the
 * output of `hitless status --json`, which shows at once whether hitless runs there
 * (exit 127: not found) and whether a master serves the app folder. Exits 0 whatever it
 * finds, so a non-zero exit means the transport itself failed (ssh says 255).
 *
 * @example
 * await run(host, preflightScript(host, 'hitless', '/tmp', 'v2')); // stdout: 'appdir=ok\ncurrent=releases/v1\n…'
 */
export function preflightScript(host: FleetHost, hitless: string, uploadDir: string, id: string): string {
  const lock = 'releases/.hitless-lock';
  return [
    `cd -- ${shellQuote(host.appDir)} 2>/dev/null || { echo appdir=missing; exit 0; }`,
    'echo appdir=ok',
    // A lock whose pid is gone is stale: hitless release takes it over, so it is no obstacle.
    `if [ -f ${lock} ]; then p=$(cat ${lock} 2>/dev/null); if [ -n "$p" ] && [ -d "/proc/$p" ]; then echo "lock=$p"; fi; fi`,
    'echo "current=$(readlink current 2>/dev/null)"',
    // The state file on one line (JSON survives losing its line breaks): when the id is taken
    // by the current release, preflight compares its recorded artifact and content hashes.
    `if [ -e releases/${shellQuote(id)} ]; then echo id-exists=1; echo "state=$(tr -d '\\n' < releases/.hitless-state.json 2>/dev/null)"; fi`,
    `if [ -d ${shellQuote(uploadDir)} ] && [ -w ${shellQuote(uploadDir)} ]; then echo upload=ok; else echo upload=no; fi`,
    'if command -v sha256sum >/dev/null 2>&1 || command -v node >/dev/null 2>&1; then echo sum=ok; else echo sum=no; fi',
    `out=$(${hitless} status --json 2>&1); echo "status-exit=$?"`,
    `echo ${shellQuote(STATUS_MARKER)}`,
    `printf '%s\\n' "$out"`,
  ].join('\n');
}

/**
 * Receives the artifact on stdin into `<file>.part`, checks its sha256 on arrival and
 * only then renames it to `file`, so a truncated or corrupted upload is never released.
 * Exit 65: checksum mismatch; 74: cannot write.
 *
 * @example
 * await run(host, uploadScript('/tmp/hitless-deploy-v2-app1.tgz', sha256), 'build/app.tgz');
 */
export function uploadScript(file: string, sha256: string): string {
  const f = shellQuote(file);
  const p = shellQuote(`${file}.part`);
  return [
    'umask 077',
    `cat > ${p} || { rm -f ${p}; echo cannot write ${p} >&2; exit 74; }`,
    `if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum ${p} | cut -c1-64); else s=$(node -e ${shellQuote(NODE_SHA256)} ${p}); fi`,
    `if [ "$s" != ${shellQuote(sha256)} ]; then rm -f ${p}; echo "checksum mismatch on arrival: expected ${sha256}, got \${s:-nothing}" >&2; exit 65; fi`,
    `mv -f ${p} ${f}`,
  ].join('\n');
}

/**
 * `hitless release <file> --id <id> --json` in the app folder; the upload is removed whatever happens.
 *
 * @example
 * await run(host, releaseScript(host, 'hitless', '/tmp/hitless-deploy-v2-app1.tgz', 'v2'));
 */
export function releaseScript(host: FleetHost, hitless: string, file: string, id: string): string {
  return [
    `cd -- ${shellQuote(host.appDir)} || { rm -f ${shellQuote(file)}; exit 70; }`,
    `${hitless} release ${shellQuote(file)} --id ${shellQuote(id)} --json`,
    'rc=$?',
    `rm -f ${shellQuote(file)}`,
    'exit $rc',
  ].join('\n');
}

/**
 * `hitless rollback <id> --json` in the app folder.
 *
 * @example
 * await run(host, rollbackScript(host, 'hitless', 'v1'));
 */
export function rollbackScript(host: FleetHost, hitless: string, id: string): string {
  return `cd -- ${shellQuote(host.appDir)} && ${hitless} rollback ${shellQuote(id)} --json`;
}

/**
 * Prints the release `current` names (empty when none).
 *
 * @example
 * (await run(host, currentScript(host))).stdout; // 'releases/v1\n'
 */
export function currentScript(host: FleetHost): string {
  return `readlink ${shellQuote(`${host.appDir}/current`)} 2>/dev/null; exit 0`;
}

/** The line cleanupScript prints for each file it removed. */
export const REMOVED_MARKER = 'removed=';

/**
 * Removes `files` where they exist and prints `removed=<file>` for each (a deploy that
 * died leaves its upload behind; the next one cleans it).
 *
 * @example
 * await run(host, cleanupScript(['/tmp/hitless-deploy-v7-app1.tgz', '/tmp/hitless-deploy-v7-app1.tgz.part']));
 */
export function cleanupScript(files: string[]): string {
  return [
    ...files.map((f) => `if [ -e ${shellQuote(f)} ]; then rm -f ${shellQuote(f)} && echo ${shellQuote(`${REMOVED_MARKER}${f}`)}; fi`),
    'exit 0',
  ].join('\n');
}
