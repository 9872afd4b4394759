/**
 * What to tell the user when a new worker never became ready or died before it was: advice
 * that fits what the worker showed (its last STATUS= line, its output), not one generic
 * sentence. Pure functions of the worker's spec and output, so the unit tests check every
 * case without a process (issue 19: a preloaded Node app that listened on another port was
 * told to write READY=1; a program binding the held port itself got only its own
 * "Address already in use").
 */
import { resolve } from 'node:path';
import type { GenerationSpec } from './spec.js';
import { ADOPTED_NOT_READY } from '../lib/protocol.js';

/** Lines of the preload and the runtimes that name the case (src/preload/, errors.ts). */
const PORT_NOT_HELD = 'ERR_LISTEN_PORT_NOT_HELD';
const LISTEN_IN_CHILD = 'ERR_LISTEN_IN_CHILD';
/** The preload's status while an app listens on some held sockets but not all (src/preload/listen.ts). */
const WAITING_FOR_LISTEN = 'waiting for the app to listen on';
/** Node's message for a main module that does not exist (CommonJS and ESM loaders). */
const CANNOT_FIND = /Cannot find module '([^']+)'/;
/** glibc's strerror, Node's code, Go's and Java's messages for EADDRINUSE. */
const ADDRESS_IN_USE = /address already in use|EADDRINUSE|only one usage of each socket address/i;

/**
 * Does the command run Node (where hitless's preload and in-app library apply), as far as its
 * words tell?
 *
 * @example
 * looksLikeNode(['node', 'server.js']); // true
 * looksLikeNode(['python3', 'worker.py']); // false
 */
export function looksLikeNode(command: string[]): boolean {
  const [program = '', first = ''] = command;
  const name = program.split('/').pop() ?? '';
  return /^node(js)?(\d+)?$/.test(name) || /\.[cm]?js$/.test(program) || (/^(tsx|ts-node)$/.test(name) && /\.[cm]?[jt]s$/.test(first))
    || program.includes('node_modules/.bin/');
}

/**
 * The advice after a worker did not announce readiness within readyTimeout.
 *
 * @example
 * readyTimeoutAdvice(spec, undefined, []); // 'write READY=1 to the fd in HITLESS_READY_FD once it serves, …'
 */
export function readyTimeoutAdvice(spec: Pick<GenerationSpec, 'command' | 'env' | 'config'>, statusText: string | undefined, output: string[]): string {
  const port = spec.env.PORT;
  const said = output.find((l) => l.includes(PORT_NOT_HELD));
  if (said !== undefined) {
    return `it listens on another port than the one hitless holds${port ? ` (${port}, in PORT)` : ''}: ${said.replace(/^.*?ERR_LISTEN_PORT_NOT_HELD /, '')}`;
  }
  if (output.some((l) => l.includes(LISTEN_IN_CHILD))) {
    return 'the app runs in a child process of the command (npm start, npx, yarn), which cannot take the socket: give hitless the app\'s own command (docs/frameworks.md)';
  }
  // The preload's own account of the sockets it still waits for is the most precise there is.
  if (statusText !== undefined && statusText.includes(WAITING_FOR_LISTEN)) return `it did not listen on every socket hitless holds in time: ${statusText}`;
  if (statusText !== undefined && statusText.startsWith(ADOPTED_NOT_READY)) {
    return 'it listens on the socket hitless holds (listen() from hitless) but never called ready(): call ready() once it serves ' +
      `(serve() calls it for you); a slow start needs a longer readyTimeout (--ready-timeout); its last status: "${statusText}"`;
  }
  const last = statusText === undefined ? '' : `; its last status: "${statusText}"`;
  if (spec.config.preload !== false && looksLikeNode(spec.command)) {
    return `a Node app is ready once it listens on the port hitless holds${port ? ` (${port}; PORT is set to it)` : ''}, or calls ready() from hitless; ` +
      `it did neither in time (does it wait for something before listening, or listen only on another address?)${last}; ` +
      'a slow start needs a longer readyTimeout (--ready-timeout)';
  }
  return `write READY=1 to the fd in HITLESS_READY_FD once it serves, or, for a program that cannot, set readyAfter (--ready-after 2s)${last}`;
}

/**
 * Advice after a worker exited before it was ready, when its output says why; undefined
 * when it does not.
 *
 * @example
 * exitAdvice(spec, ['OSError: [Errno 98] Address already in use']); // 'it tried to bind the port itself, …'
 */
export function exitAdvice(spec: Pick<GenerationSpec, 'command' | 'config' | 'fds' | 'env'> & { cwd?: string }, output: string[]): string | undefined {
  // Node's "Cannot find module '/srv/app/missing.js'" (the preload's --import makes it the ESM
  // loader's wording even for a CommonJS app) for the file the command names.
  const missing = output.map((l) => CANNOT_FIND.exec(l)?.[1]).find((p) => p !== undefined);
  const names = (w: string): boolean => (spec.cwd === undefined ? missing?.endsWith(`/${w.replace(/^\.\//, '')}`) : missing === resolve(spec.cwd, w)) === true;
  if (missing !== undefined && looksLikeNode(spec.command) && spec.command.slice(1).some((w) => !w.startsWith('-') && names(w))) {
    return `its entry file ${missing} does not exist${spec.cwd ? ` (the workers' folder is ${spec.cwd})` : ''}: check "command" and "cwd" (\`hitless check\` warns about it)`;
  }
  if (!output.some((l) => ADDRESS_IN_USE.test(l))) return undefined;
  // No socket to serve (an empty listen list, which only systemd's sockets make valid): the
  // app bound one of its own, and there is no inherited fd to point it at.
  if (spec.fds.length === 0) {
    return 'it tried to bind a port itself and found it in use; the master gives this generation no listening socket (LISTEN_FDS=0: "listen" is empty), ' +
      'so each worker binds its own: give the master a "listen" address (--listen 127.0.0.1:8080) and the workers serve the socket they inherit';
  }
  const node = looksLikeNode(spec.command);
  // A preloaded Node app that binds another port than the held one: the preload lets it (the
  // app may serve a port of its own), so with two workers the first binds it and the second
  // finds it in use. That is the wrong port, not a program that cannot take fd 3.
  // The error's first line, or (when the stack pushed it out of the kept lines) the `port:`
  // of Node's printed error object.
  const port = [/EADDRINUSE\b.*?:(\d+)\s*$/, /^\s*port: (\d+),?\s*$/]
    .map((re) => output.map((l) => re.exec(l)?.[1]).find((p) => p !== undefined))
    .find((p) => p !== undefined);
  const held = spec.env.PORT;
  if (node && spec.config.preload !== false && port !== undefined && held !== undefined && port !== held) {
    return `it listens on port ${port}, which the master does not hold (it holds port ${held}; another worker of this generation may have bound ${port} outside hitless first): ` +
      `start hitless with --listen ${port}, or make the app listen on port ${held} (PORT is set to it)`;
  }
  const fds = spec.fds.length === 1 ? 'fd 3' : `fds 3 to ${2 + spec.fds.length}`;
  const holds = held ? `port ${held}` : 'the addresses it listens on';
  return `it tried to bind a port itself and found it in use; the hitless master holds ${holds}, so a worker must serve the listening socket it inherits as ${fds} ` +
    `(LISTEN_FDS=${spec.fds.length}, the systemd socket-activation protocol: sd_listen_fds(), gunicorn as the command itself with no --bind, …)` +
    (node ? (spec.config.preload === false ? '; for a Node app, drop --no-preload ("preload": false) so the preload adopts its listen(port)' : '') : '; a program that can only bind a port itself cannot share one with hitless');
}
