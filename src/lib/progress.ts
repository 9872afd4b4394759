/**
 * What a draining worker tells the master while it drains: how many connections are still
 * open (`STATUS=draining <n> connections` on the readiness socket, shown by `hitless reload`
 * and `hitless status`), and, once only upgraded (long-lived) connections are left, a
 * `lingering` message on the channel with their number, so the master no longer makes the
 * reload wait for this worker (issue 24; the master's side is src/core/retire.ts).
 */
import { channelEnabled, send } from './channel.js';
import { status } from './ready.js';
import { registeredServers } from './registry.js';
import { trackerOf } from './track.js';

/** How often the drain reports its progress to the master. */
const DRAIN_REPORT_MS = 100;

/** Anything else that must be done before the worker may say it holds only upgraded connections (a WebSocket hand-over under way). */
const busy = new Set<() => boolean>();

/**
 * Registers a check that holds the `lingering` report back while it returns true (internal:
 * hitless/ws moves WebSockets first). Returns a function that removes it.
 */
export function holdLingering(check: () => boolean): () => void {
  busy.add(check);
  return () => busy.delete(check);
}

/**
 * Reports the drain's progress every {@link DRAIN_REPORT_MS} until the returned function is
 * called: a STATUS line when the number of open connections changes (a no-op standalone),
 * and under the master's channel a `lingering` message once only upgraded connections are
 * left (at least one), then whenever their number changes.
 *
 * @example
 * const stop = reportDrainProgress();
 * await Promise.all(drains);
 * stop();
 */
export function reportDrainProgress(): () => void {
  let lastOpen = -1;
  let lastUpgraded = -1;
  const report = (): void => {
    let open = 0;
    let upgraded = 0;
    let onlyUpgraded = true;
    for (const [server] of registeredServers()) {
      const tracker = trackerOf(server);
      if (tracker === undefined) continue;
      open += tracker.sockets.size;
      upgraded += tracker.upgraded.size;
      onlyUpgraded &&= tracker.holdsOnlyUpgraded();
    }
    if (open !== lastOpen) {
      lastOpen = open;
      status(`draining ${open} connection${open === 1 ? '' : 's'}`);
    }
    // With none left the drain is about to end: the master waits for the exit (and its counts).
    if (!onlyUpgraded || upgraded === lastUpgraded || (upgraded === 0 && lastUpgraded <= 0) || !channelEnabled()) return;
    for (const check of busy) if (check()) return;
    lastUpgraded = upgraded;
    send({ type: 'lingering', upgraded });
  };
  report();
  const timer = setInterval(report, DRAIN_REPORT_MS).unref();
  return () => clearInterval(timer);
}
