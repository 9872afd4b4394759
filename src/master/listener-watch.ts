/**
 * Held TCP sockets that stopped listening. The master holds each listening socket for its
 * whole life, and every worker of every generation gets a copy of the same open socket. A
 * worker that calls shutdown(2) on its copy before close(2) (Python's
 * `sock.shutdown(SHUT_RDWR)`, a habit from client code) does not shut its copy: it shuts the
 * socket, for everyone. The kernel takes it out of the listening table, resets the
 * connections in its accept queue, and refuses new ones: every generation, the one that just
 * went live included, stops serving while the reload reported success. close(2) of a copy
 * leaves the socket listening as long as another holds it.
 *
 * The master checks its sockets when a worker exits (the usual moment: a worker shuts the
 * socket at the end of its drain) in the socket tables (socket-table.ts), and makes one that
 * was listening and no longer is listen again. listen(2) on a socket shut down this way works
 * and keeps its port when the port was asked for (bind(2) to a port sets SOCK_BINDPORT_LOCK,
 * so the shutdown keeps it bound); a socket bound to port 0 loses its port at the shutdown
 * and would listen on a new ephemeral one, so the port is checked after the listen and a
 * changed one reported as a failure. Unix sockets are not checked: a shut-down unix
 * listener still shows as listening in /proc/net/unix, and listen(2) does not revive it.
 */
import { fstatSync } from 'node:fs';
import { listeningAmong } from './socket-table.js';

/** A held socket as the watch sees it. */
export interface WatchedSocket {
  name: string;
  address: string;
  fd: number;
}

/** A held socket found not listening any more, and whether it listens again. */
export interface StoppedSocket extends WatchedSocket {
  relistened: boolean;
  /** Why listen(2) failed, when it did. */
  error?: string;
}

export interface ListenerWatchOptions {
  /** The sockets held now. */
  sockets: () => WatchedSocket[];
  /** listen(2) on these fds again, without accepting (listeners.ts); throws on failure. */
  relisten: (fds: number[]) => void;
  /** Which of these socket inodes listen, with their port (default: the /proc tables). */
  listening?: (inodes: Set<string>) => Map<string, number>;
  /** The inode of the socket at `fd` (default: fstat). */
  inodeOf?: (fd: number) => string;
}

export class ListenerWatch {
  readonly #opts: ListenerWatchOptions;
  /** Inodes seen listening, with their port: only a socket that listened can be said to have stopped (not Linux: none). */
  readonly #seen = new Map<string, number>();

  constructor(opts: ListenerWatchOptions) {
    this.#opts = opts;
    this.check();
  }

  /**
   * Looks at every held TCP socket; those that listened before and do not now are made to
   * listen again, and returned.
   *
   * @example
   * for (const s of watch.check()) logger.error(stoppedText(s, 'worker 1.0 (pid 4242) exited'));
   */
  check(): StoppedSocket[] {
    const inodeOf = this.#opts.inodeOf ?? ((fd: number) => String(fstatSync(fd).ino));
    const held: Array<WatchedSocket & { inode: string }> = [];
    for (const s of this.#opts.sockets()) {
      if (s.address.startsWith('unix:')) continue;
      try {
        held.push({ ...s, inode: inodeOf(s.fd) });
      } catch {
        // closed meanwhile: nothing to watch
      }
    }
    if (held.length === 0) return [];
    const lookUp = this.#opts.listening ?? listeningAmong;
    const listening = lookUp(new Set(held.map((s) => s.inode)));
    const stopped = held.filter((s) => !listening.has(s.inode) && this.#seen.has(s.inode));
    for (const [inode, port] of listening) this.#seen.set(inode, port);
    if (stopped.length === 0) return [];
    let failed: string | undefined;
    try {
      this.#opts.relisten(stopped.map((s) => s.fd));
    } catch (err) {
      failed = err instanceof Error ? err.message : String(err);
    }
    const after = failed === undefined ? lookUp(new Set(stopped.map((s) => s.inode))) : new Map<string, number>();
    return stopped.map(({ name, address, fd, inode }) => {
      const was = this.#seen.get(inode);
      const now = after.get(inode);
      const error = failed ?? (now === undefined
        ? 'it does not listen after listen(2)'
        : now !== was
          ? `the shutdown released its port ${String(was)} (it was bound to port 0, an ephemeral port), and it listens on port ${now} now`
          : undefined);
      if (now !== undefined) this.#seen.set(inode, now);
      return { name, address, fd, relistened: error === undefined, ...(error === undefined ? {} : { error }) };
    });
  }
}

/**
 * The one line that says what happened to `s`, the likely cause, and the fix; `when` says
 * when it was found ("after worker 1.0 (pid 4242) exited").
 *
 * @example
 * stoppedText({ name: 'http', address: '127.0.0.1:8080', fd: 3, relistened: true }, 'after worker 1.0 (pid 4242) exited');
 */
export function stoppedText(s: StoppedSocket, when: string): string {
  const outcome = s.relistened
    ? 'hitless made it listen again; connections that waited in its queue were reset, and new ones were refused meanwhile'
    : `hitless could not make it listen again (${s.error ?? 'unknown error'}): connections to it are refused until the master is restarted (hitless stop, then start)`;
  return `listener "${s.name}" (${s.address}) had stopped listening, found ${when}: a worker most likely called shutdown(2) on its ` +
    `copy of the socket, which shuts the socket every worker and generation shares. ${outcome}. Fix the worker: at its stop, ` +
    'close its copy (close(2), Python\'s sock.close()) and never call shutdown() on a listening socket (README, "The worker contract")';
}
