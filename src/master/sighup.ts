/**
 * What a SIGHUP does: ask for a reload, always. The supervisor's queue decides what becomes
 * of it, and says so in an event (logged as `SIGHUP: reload queued behind generation N` or
 * `SIGHUP: merged into the queued reload`): it starts at once when nothing runs, waits
 * behind the reload (or scale) in progress, or joins the one reload already queued. A
 * storm of SIGHUPs is therefore at most two reloads (the one running and one after it),
 * and a SIGHUP sent after the previous reload finished always reloads: none is dropped.
 * During a master upgrade (`hitless upgrade`) it is held (logged as `SIGHUP: reload held
 * until the master upgrade … ends`) until this master's workers handed their connections
 * over to the new master, then passed on to it (upgrade.ts), or run here once the upgrade
 * failed; from then on one is passed on at once, not held for background generations.
 * (Issue 25: an earlier rule ignored SIGHUPs less than 200 ms apart while a reload ran,
 * which swallowed a deploy script's deliberate SIGHUP sent just as the old workers exited.)
 */
import type { Logger } from '../core/logger.js';
import type { MasterHandle, ReloadOutcome } from '../core/types.js';

/**
 * The SIGHUP handler: logs the signal and asks `master` for a reload; resolves with the
 * reload's outcome (tests and callers may ignore it).
 *
 * @example
 * const onHup = sighupHandler(handle, logger);
 * process.on('SIGHUP', () => void onHup());
 */
export function sighupHandler(master: Pick<MasterHandle, 'reload'>, logger: Logger): () => Promise<ReloadOutcome> {
  return () => {
    logger.info('SIGHUP received: reload requested', { event: 'sighup' });
    // During a master upgrade nobody could be told to ask again: the reload is held until it ends.
    return master.reload('SIGHUP', { holdDuringUpgrade: true }).then((outcome) => {
      // A stopping master refuses reloads; say so rather than let the SIGHUP vanish. A reload
      // this SIGHUP started and a stop cut (attempted ≠ serving) is logged once, as abandoned.
      if (!outcome.ok && outcome.error?.code === 'ERR_STOPPING' && outcome.attempted === outcome.generation) logger.warn('SIGHUP: no reload, the master is stopping', { event: 'sighup' });
      // Held during an upgrade that went through, or passed on after the takeover: the new master runs it (and logs it).
      if (!outcome.ok && outcome.error?.code === 'ERR_UPGRADE_BUSY' && !outcome.coalesced) logger.info(`SIGHUP: ${outcome.error.message}`, { event: 'sighup' });
      return outcome;
    });
  };
}
