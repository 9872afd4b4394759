/**
 * Unix socket files of held listeners that were removed (or replaced) while the master
 * runs: a tmp cleaner, an `rm -rf run/` in a deploy script (h21 F10). The socket still
 * listens and every worker still accepts on it, but no client can reach it by its path any
 * more, and a reload cannot help: an address that stays in the list keeps its socket
 * (CONFIG.md, "Listeners").
 *
 * Why it is said, not bound again as the control socket is (control/server.ts): a new
 * socket at the path would be a new listening socket, which the serving workers do not
 * hold; only the workers of the next generation would get it, and until then its
 * connections would queue unanswered. Restarting the master, or taking the entry out with
 * one reload and back with another, binds it with the workers that serve it.
 *
 * A file is known by its device and inode, taken when it is first seen (right after the
 * master bound it, or adopted it in an upgrade).
 */
import { lstatSync } from 'node:fs';

/** How often the master looks at its unix socket files, for the log (ms; as often as at its control socket). */
export const SOCKET_FILE_CHECK_MS = 2000;

/** A held socket as this watch sees it: unix ones have an address `unix:<path>`. */
export interface HeldSocket {
  name: string;
  address: string;
}

/** What `lstat` gives that matters here. */
export type StatFile = (path: string) => { dev: number; ino: number; isSocket(): boolean } | undefined;

const lstatOrUndefined: StatFile = (path) => {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
};

export class SocketFileWatch {
  readonly #sockets: () => HeldSocket[];
  readonly #stat: StatFile;
  /** The file of each held unix socket, by path, as first seen. */
  readonly #known = new Map<string, { dev: number; ino: number }>();
  /** The problems said last time (each is said once, and again if it goes and comes back). */
  #said = new Set<string>();

  constructor(sockets: () => HeldSocket[], stat: StatFile = lstatOrUndefined) {
    this.#sockets = sockets;
    this.#stat = stat;
    this.problems();
  }

  /**
   * One line per held unix socket whose file is gone or is another file now.
   *
   * @example
   * watch.problems(); // ['listener "admin" (unix:/srv/app/run/admin.sock): its socket file was removed …']
   */
  problems(): string[] {
    const out: string[] = [];
    const held = this.#sockets().filter(({ address }) => address.startsWith('unix:'));
    // A path no longer held is forgotten: taken out and put back by two reloads (the fix the
    // warning gives), it is bound anew, and its new file is the one to know.
    const paths = new Set(held.map(({ address }) => address.slice('unix:'.length)));
    for (const path of [...this.#known.keys()]) if (!paths.has(path)) this.#known.delete(path);
    for (const { name, address } of held) {
      const path = address.slice('unix:'.length);
      const now = this.#stat(path);
      const known = this.#known.get(path);
      if (known === undefined) {
        if (now?.isSocket()) this.#known.set(path, { dev: now.dev, ino: now.ino });
        continue;
      }
      if (now !== undefined && now.dev === known.dev && now.ino === known.ino) continue;
      const what = now === undefined ? 'its socket file was removed while the master runs' : `${path} is another file now (removed, and made again by someone else)`;
      out.push(`listener "${name}" (${address}): ${what}; the socket still listens, but clients cannot reach it by that path, and a reload does not bind it again ` +
        '(an address that stays in the list keeps its socket): restart the master (`hitless stop`, then `hitless start`), ' +
        'or take the entry out of the configuration, reload, put it back and reload again');
    }
    return out;
  }

  /**
   * {@link problems} not said before, for the log; a path whose file came back (the same
   * one: a restored backup) may be said again if it goes again.
   */
  news(): string[] {
    const now = this.problems();
    const fresh = now.filter((text) => !this.#said.has(text));
    this.#said = new Set(now);
    return fresh;
  }
}
