/**
 * The preload in a process that inherited the master's environment but is not the worker
 * the master started: LISTEN_PID names another process. That is how `npm start`, `npx`
 * and `yarn` run an app (npm is the worker, the app its grandchild), and how an app's own
 * child processes run. Such a process cannot adopt the sockets (they are not its own), and
 * its listen on a port the master holds would fail with EADDRINUSE: instead it stops with
 * one line that says why and what to run instead. Every other listen is left alone.
 */
import { readFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { relative } from 'node:path';
import { findHeld, listenRequest, type HeldSocket } from './held.js';
import type { HitlessErrorCode } from '../errors.js';

const IN_CHILD: HitlessErrorCode = 'ERR_LISTEN_IN_CHILD';

/**
 * Installs the check for a process whose LISTEN_PID is `owner`.
 *
 * @example
 * hookForeignListen(foreignSockets(process.env), Number(process.env.LISTEN_PID));
 */
export function hookForeignListen(held: HeldSocket[], owner: number): void {
  const originalListen = net.Server.prototype.listen as (...args: unknown[]) => net.Server;
  net.Server.prototype.listen = function listen(this: net.Server, ...args: unknown[]): net.Server {
    const parsed = listenRequest(args);
    const target = parsed && findHeld(held, parsed.request);
    if (target !== undefined) {
      writeSync(2, `${wrapperMessage(target, owner)}\n`);
      process.exit(1);
    }
    return originalListen.apply(this, args);
  } as typeof net.Server.prototype.listen;
}

/** The one-line explanation, with this process's own command as the fix. */
export function wrapperMessage(target: HeldSocket, owner: number): string {
  const what = commandOf(owner);
  return (
    `hitless: ${IN_CHILD} this process (pid ${process.pid}) cannot listen on ${target.address}: the master holds that socket ` +
    `for the worker it started (pid ${owner}${what ? `, "${what}"` : ''}), which runs the app in a child process, as \`npm start\`, \`npx\` and \`yarn\` do; ` +
    `give hitless the app's own command instead, here: ${ownCommand()}`
  );
}

/**
 * How this process was started, as a command to put after `hitless start … --`. Its Node
 * flags are kept whole (`--import <loader>`: tsx's CLI runs the app as `node --require …
 * --import …`): the preload comes through NODE_OPTIONS, never in execArgv, and would come again.
 */
export function ownCommand(argv = process.argv, execArgv = process.execArgv, cwd = process.cwd()): string {
  const [, script, ...args] = argv;
  const words = ['node', ...execArgv, script === undefined ? '' : relative(cwd, script) || script, ...args];
  return words
    .filter((w) => w !== '')
    .map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/** The command line of `pid` (Linux /proc), shortened; undefined where unknown. */
function commandOf(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return text.length > 60 ? `${text.slice(0, 57)}...` : text || undefined;
  } catch {
    return undefined;
  }
}
