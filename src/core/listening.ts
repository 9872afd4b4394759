/**
 * Which of a generation's listening sockets its workers accept on (issue 20). A socket the
 * master holds that no worker accepts on is a black hole: every connection to it completes
 * its TCP handshake, then waits in the kernel's accept queue forever.
 *
 * Workers that speak the channel (the in-app library, the preload) say in `hello` which
 * inherited sockets they adopted. One that leaves a socket out is refused at readiness with
 * ERR_LISTENER_UNSERVED, like any failed readiness: the reload fails (the old generation
 * keeps serving) or the master does not start. Workers that do not say (other languages,
 * `readyAfter` programs) cannot be checked: a generation with more than one socket gets a
 * warning naming them instead, in the reload's outcome, the log and `hitless status`.
 */
import { HitlessError } from '../errors.js';
import { looksLikeNode } from './advice.js';
import { SD_LISTEN_FDS_START } from '../lib/defaults.js';
import type { Hello } from './types.js';
import type { GenerationSpec } from './spec.js';

/** "listen1 (127.0.0.1:42581, fd 4)": a socket as the worker sees it. */
function describe(spec: GenerationSpec, index: number): string {
  const address = spec.fdAddresses?.[index];
  return `"${spec.fdNames[index] ?? '?'}" (${address ? `${address}, ` : ''}fd ${SD_LISTEN_FDS_START + index})`;
}

/**
 * The names of `spec`'s sockets that a worker saying `hello` does not accept on; empty
 * when it accepts on all, or did not say which (no `adopted` list).
 *
 * @example
 * unservedListeners(spec, { handover: true, listeners: ['http'], adopted: ['http'] }); // ['listen1'] when spec has http and listen1
 */
export function unservedListeners(spec: GenerationSpec, hello: Hello | undefined): string[] {
  const adopted = hello?.adopted;
  if (adopted === undefined) return [];
  return spec.fdNames.filter((name) => !adopted.includes(name));
}

/**
 * The readiness refusal for a worker that leaves `unserved` out: one line naming each
 * socket and the fix.
 *
 * @example
 * unservedError('2.1 (pid 4242)', spec, ['listen1'], ['http']).message;
 * // 'worker 2.1 (pid 4242) does not accept on listener "listen1" (127.0.0.1:42581, fd 4): …'
 */
export function unservedError(label: string, spec: GenerationSpec, unserved: string[], adopted: string[]): HitlessError {
  const which = unserved.map((name) => describe(spec, spec.fdNames.indexOf(name))).join(', ');
  const one = unserved.length === 1;
  const served = adopted.length > 0 ? `it accepts only on ${adopted.map((n) => `"${n}"`).join(', ')}` : 'it accepts on none';
  return new HitlessError(
    'ERR_LISTENER_UNSERVED',
    `worker ${label} does not accept on listener${one ? '' : 's'} ${which} (${served}), so connections to ` +
      `${one ? 'it' : 'them'} would wait unanswered: ${unservedFix(spec, unserved)}, or remove the address from "listen"`,
    { details: { unserved, adopted, output: [] } },
  );
}

/**
 * The fix in the worker's own terms: the in-app library's listen() for a Node command, the
 * inherited fd and its LISTEN_FDNAMES entry for a program of another language (which
 * cannot call listen()).
 */
function unservedFix(spec: GenerationSpec, unserved: string[]): string {
  const one = unserved.length === 1;
  if (looksLikeNode(spec.command)) {
    return `serve ${one ? 'it' : 'each'} in the app with listen(server, '${unserved[0] ?? 'listen1'}') ` +
      '(serve(server) without a name serves every socket no listen() claims)';
  }
  const fds = unserved.map((name) => `fd ${SD_LISTEN_FDS_START + spec.fdNames.indexOf(name)} (LISTEN_FDNAMES entry "${name}")`);
  return `accept on ${fds.join(' and on ')} in the program, and list ${one ? 'it' : 'them'} in the hello's "adopted"`;
}

/**
 * Warnings about a generation whose ready workers do not say which sockets they accept on
 * (no `adopted` list), when it has more than one socket: nobody can tell whether every one
 * is served. Empty otherwise.
 *
 * @example
 * listenerWarnings(3, spec, workers.map((w) => w.hello));
 * // ['generation 3: its workers do not say which sockets they accept on (no hello on the hitless channel, …); …']
 */
export function listenerWarnings(generation: number, spec: GenerationSpec, hellos: Array<Hello | undefined>): string[] {
  if (spec.fdNames.length < 2 || hellos.length === 0 || hellos.every((h) => h?.adopted !== undefined)) return [];
  const all = spec.fdNames.map((_, i) => describe(spec, i)).join(', ');
  return [
    `generation ${generation}: its workers do not say which sockets they accept on (${hellos.some((h) => h !== undefined)
      ? 'their hello on the hitless channel has no `adopted` list'
      : 'no hello on the hitless channel, which would list them in `adopted`'}), ` +
      `so hitless cannot check that each of ${all} is served; make sure the program accepts on every inherited socket ` +
      `(fds ${SD_LISTEN_FDS_START}–${SD_LISTEN_FDS_START + spec.fdNames.length - 1}, LISTEN_FDS=${spec.fdNames.length}): connections to one it ignores wait unanswered`,
  ];
}
