/**
 * The master's signals (docs/CLI.md, "Signals"): SIGHUP asks for a reload (sighup.ts),
 * SIGUSR2 for an upgrade of the master itself (`hitless upgrade`, nginx's USR2), SIGTERM and
 * SIGINT drain everything and exit 0, a second SIGTERM/SIGINT kills the workers at once.
 * SIGUSR1 is left to Node's debugger.
 */
import type { Logger } from '../core/logger.js';
import type { MasterHandle } from '../core/types.js';
import { sighupHandler } from './sighup.js';

/**
 * Maps signals to `master`'s actions; the returned function removes the handlers.
 *
 * @example
 * const removeSignalHandlers = handleSignals(handle, logger);
 */
export function handleSignals(master: MasterHandle, logger: Logger): () => void {
  const hup = sighupHandler(master, logger);
  const onHup = (): void => void hup();
  const onUsr2 = (): void => {
    if (!master.upgrade) return;
    logger.info('SIGUSR2 received: master upgrade requested', { event: 'sigusr2' });
    // The outcome is logged as `upgrade-done` (the supervisor writes it).
    void master.upgrade({ reason: 'SIGUSR2' });
  };
  let stops = 0;
  const onStop = (signal: NodeJS.Signals): void => {
    stops += 1;
    if (stops === 1) logger.info(`${signal} received: draining all workers (send it again to stop at once)`);
    else logger.warn(`${signal} received again: killing workers now`);
    void master.stop(stops > 1);
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
