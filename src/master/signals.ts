/**
 * The master's signals (docs/CLI.md, the signals under "hitless start"): SIGHUP asks for a reload (sighup.ts),
 * SIGUSR2 for an upgrade of the master itself (`hitless upgrade`, nginx's USR2), SIGTERM and
 * SIGINT drain everything and exit 0, a second SIGTERM/SIGINT kills the workers at once.
 * SIGUSR1 is left to Node's debugger.
 *
 * A second stop signal within {@link SAME_STOP_MS} of the first is the same stop, not a
 * second press: Ctrl-C on `npm start` reaches the master twice in a few milliseconds where
 * the script's shell execs the master (bash does; npm forwards the terminal's SIGINT to its
 * child, which then is the master, and the terminal sends it to the master's process group
 * too), and a drain asked for once must not become a kill.
 */
import type { Logger } from '../core/logger.js';
import type { MasterHandle } from '../core/types.js';
import { SAME_STOP_MS } from '../lib/defaults.js';
import { sighupHandler } from './sighup.js';

/**
 * Maps signals to `master`'s actions; the returned function removes the handlers. `now`
 * (ms) times the stop signals.
 *
 * @example
 * const removeSignalHandlers = handleSignals(handle, logger);
 */
export function handleSignals(master: MasterHandle, logger: Logger, now: () => number = () => performance.now()): () => void {
  const hup = sighupHandler(master, logger);
  const onHup = (): void => void hup();
  const onUsr2 = (): void => {
    if (!master.upgrade) return;
    logger.info('SIGUSR2 received: master upgrade requested', { event: 'sigusr2' });
    // The outcome is logged as `upgrade-done` (the supervisor writes it).
    void master.upgrade({ reason: 'SIGUSR2' });
  };
  let first: number | undefined;
  const onStop = (signal: NodeJS.Signals): void => {
    const at = now();
    if (first === undefined) {
      first = at;
      logger.info(`${signal} received: draining all workers (send it again to stop at once)`);
      void master.stop(false);
    } else if (at - first < SAME_STOP_MS) {
      logger.info(`${signal} received again ${Math.round(at - first)} ms after the first: the same stop (send it again to stop at once)`);
    } else {
      logger.warn(`${signal} received again: killing workers now`);
      void master.stop(true);
    }
  };
  process.on('SIGHUP', onHup);
  process.on('SIGUSR2', onUsr2);
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  return () => {
    process.off('SIGHUP', onHup);
    process.off('SIGUSR2', onUsr2);
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
  };
}
