/**
 * `npx hitless release …` (npm exec, and `npm run` likewise) does not run hitless itself:
 * npm runs `sh -c "'hitless' 'release' …"`, and dash, Debian's and Ubuntu's sh, forks hitless
 * below that shell instead of replacing itself with it. npm passes the SIGINT and SIGTERM it
 * gets to that shell alone (@npmcli/run-script's signal-manager.js), never to hitless:
 * - SIGTERM (a CI cancel, `kill <npx pid>`) ends the shell, npm then ends itself with the
 *   same signal (exit 143), and hitless, orphaned, went on: prepare finished and the release
 *   went live behind a deploy script that had been told it was stopped;
 * - SIGINT is caught by the waiting shell, so hitless never learns of it (nothing here can
 *   see it: docs/RELEASES.md says to run `./node_modules/.bin/hitless` in scripts).
 *
 * A command started by npm whose parent goes away therefore sends itself the SIGTERM that
 * npm meant for it, so the command's own handling of SIGTERM applies (a release stops
 * before the switch, a deploy rolls back). Only under npm (`npm_lifecycle_event` set): a
 * hitless started with `nohup … &` or `setsid` is left alone, its parent going is intended.
 */

/** How often the parent is looked at: getppid() is one cheap system call. */
const PARENT_POLL_MS = 200;

/**
 * Watches the parent of a command started by npm (npx, npm exec, npm run); once it is gone,
 * says so on stderr and sends this process SIGTERM. Returns the function that stops
 * watching; a no-op when npm did not start this process.
 *
 * @example
 * const stopWatching = interruptWhenNpmParentExits('release');
 * try { await install(); } finally { stopWatching(); }
 */
export function interruptWhenNpmParentExits(command: string, env: NodeJS.ProcessEnv = process.env): () => void {
  if (env.npm_lifecycle_event === undefined) return () => {};
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.stderr.write(`hitless: the npm exec that ran \`hitless ${command}\` has gone (its shell, pid ${String(parent)}, ended: npm passes SIGTERM to that shell, not to hitless); acting on SIGTERM. In scripts run ./node_modules/.bin/hitless, so that signals reach it\n`);
    process.kill(process.pid, 'SIGTERM');
  }, PARENT_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
