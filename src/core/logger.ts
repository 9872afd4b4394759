/**
 * The master's own event log: one line per event on stderr, readable text by default,
 * JSON lines with `--log-format json`. Hand-written rather than pino: the master logs a
 * few dozen events per reload, so a 60-line formatter beats a dependency tree.
 */
import type { CanaryLend, MasterEvent, ReloadOutcome } from './types.js';
import { wasRefused } from './outcomes.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  format: 'text' | 'json';
  /** Where lines go (default: process.stderr). */
  write?: (line: string) => void;
  /** Clock for timestamps (tests pin it). */
  now?: () => number;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? Date.now;
  const log = (level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void => {
    const time = new Date(now()).toISOString();
    if (options.format === 'json') {
      write(JSON.stringify({ time, level, src: 'hitless', msg, ...fields }) + '\n');
      return;
    }
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
      .join(' ');
    write(`${time} hitless ${level === 'info' ? '' : level.toUpperCase() + ' '}${msg}${extra ? ' ' + extra : ''}\n`);
  };
  return {
    log,
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
  };
}

/**
 * What became of a reload request that could not start at once, as the log and
 * `hitless reload` say it.
 *
 * @example
 * queuedPhrase({ type: 'reload-queued', reason: 'SIGHUP', merged: false, behind: 'reload', generation: 6 });
 * // 'reload queued behind generation 6'
 */
export function queuedPhrase(e: Extract<MasterEvent, { type: 'reload-queued' }>): string {
  if (e.merged) return 'merged into the queued reload';
  if (e.behind === 'reload') return `reload queued behind generation ${e.generation ?? '?'}`;
  if (e.behind === 'rebalance') return 'reload queued behind restarted workers taking their share of the kept-alive connections';
  if (e.behind === 'upgrade') return `reload held until the master upgrade${e.pid ? ` to pid ${e.pid}` : ''} ends (the new master runs it once it took over)`;
  return `reload queued behind ${e.behind === 'scale' ? 'the scale in progress' : "the first generation's start"}`;
}

/**
 * A starved canary lent one more connection, for the log and `hitless reload`'s lines.
 *
 * @example
 * lendPhrase({ type: 'canary-lend', generation: 3, from: 1, slot: 2, canary: 0, serving: 1243, ms: 2000 });
 * // 'canary generation 3 answered 0 responses to the serving generation's 1243 in 2 s, with nothing busy: worker 1.2 lends it the connection it used last'
 */
export function lendPhrase(e: CanaryLend): string {
  return `canary generation ${e.generation} answered ${e.canary} response${e.canary === 1 ? '' : 's'} to the serving generation's ${e.serving} in ${Math.round(e.ms / 100) / 10} s, with nothing busy: worker ${e.from}.${e.slot} lends it the connection it used last`;
}

/**
 * What a reload that rolled back left serving (a new worker died after going live), or
 * undefined for any other outcome.
 *
 * @example
 * rollbackPhrase(outcome); // 'reload failed, rolled back: generation 5 serves generation 2's version'
 */
export function rollbackPhrase(o: ReloadOutcome): string | undefined {
  const r = o.rollback;
  if (!r) return undefined;
  if (r.error?.code === 'ERR_STOPPING') return 'reload failed and the master began stopping during its rollback';
  return r.ok ? `reload failed, rolled back: generation ${r.generation} serves generation ${r.version}'s version`
    : `reload failed and its rollback failed too: generation ${o.generation} serves, its crashed workers restarted with backoff`;
}

/** 'worker 3.0' or 'workers 3.0, 3.2'. */
function workersPhrase(generation: number, slots: number[]): string {
  return `worker${slots.length === 1 ? '' : 's'} ${slots.map((s) => `${generation}.${s}`).join(', ')}`;
}

/** Writes a master event as one log line (worker output is not logged here). */
export function logEvent(logger: Logger, e: MasterEvent): void {
  // `event` names the MasterEvent type so JSON consumers (tests, log pipelines) need not parse messages.
  const event = e.type;
  switch (e.type) {
    case 'worker-output':
      return;
    case 'reload-done': {
      const o = e.outcome;
      if (o.ok) logger.info('reload done', { event, generation: o.generation, ms: o.durationMs, forced: o.forced, ...o.connections, stillDraining: o.stillDraining });
      // Cut by a stop (or an upgrade's hand-over) the user asked for: not a failure to alert on,
      // and no generation keeps serving once the master stops.
      else if (o.error?.code === 'ERR_STOPPING') {
        logger.info(o.attempted === o.generation ? `reload not started: ${o.error.message}` : `reload of generation ${o.attempted} abandoned: ${o.error.message}`, {
          event, generation: o.generation, attempted: o.attempted, code: o.error.code,
        });
        return;
      } else logger.error(rollbackPhrase(o) ?? (wasRefused(o)
        // Nothing started (an invalid configuration, an address in use): refused, as the CLI and `hitless status` say.
        ? `reload refused, nothing started: generation ${o.generation} keeps serving`
        : 'reload failed, previous generation keeps serving'), {
        event, generation: o.generation, attempted: o.attempted, code: o.error?.code, error: o.error?.message,
      });
      for (const line of o.ok ? [] : (o.error?.output ?? [])) logger.error(`  | ${line}`);
      return;
    }
    case 'upgrade-done': {
      const o = e.outcome;
      if (o.ok) {
        logger.info('upgrade done: the new master serves', {
          event, pid: o.pid, version: o.version, generation: o.generation, ms: o.durationMs, forced: o.forced, ...o.connections, background: o.background,
          ...(o.reloadsPassedOn ? { reloadsPassedOn: o.reloadsPassedOn } : {}),
        });
        return;
      }
      const refused = o.error?.code === 'ERR_UPGRADE_REFUSED' || o.error?.code === 'ERR_UPGRADE_BUSY';
      logger.log(refused ? 'warn' : 'error', refused ? 'upgrade refused' : 'upgrade failed, this master keeps serving', {
        event, reason: o.reason, code: o.error?.code, error: o.error?.message, pid: o.to?.pid,
      });
      for (const line of o.error?.output ?? []) logger.error(`  | ${line}`);
      return;
    }
    case 'upgrade-phase': {
      // The generations still draining in the background, by number and deadline (not every worker's entry).
      const { type: _t, draining, ...fields } = e;
      const background = draining?.map((d) => ({ generation: d.generation, workers: d.workers.length, until: new Date(d.deadline).toISOString() }));
      logger.info('upgrade phase', { event, ...fields, background });
      return;
    }
    case 'worker-exit': {
      const { type: _t, ...fields } = e;
      // Asked to stop, then SIGKILLed at a deadline (drainTimeout, a rejected worker's grace,
      // a forced stop): whatever it still held was cut, which the log must not call a plain exit.
      const killed = e.planned && e.signal === 'SIGKILL';
      const msg = !e.planned ? 'worker crashed' : killed ? 'worker killed (SIGKILL) after it was asked to stop: requests in flight there were cut' : 'worker exited';
      logger.log(e.planned && !killed ? 'info' : 'warn', msg, { event, ...fields });
      return;
    }
    case 'reload-queued': {
      const { type: _t, ...fields } = e;
      logger.info(`${e.reason}: ${queuedPhrase(e)}`, { event, ...fields });
      return;
    }
    case 'canary-lend': {
      const { type: _t, ...fields } = e;
      logger.info(lendPhrase(e), { event, ...fields });
      return;
    }
    case 'canary-verdict': {
      const { type: _t, ...fields } = e;
      logger.log(e.verdict === 'pass' ? 'info' : 'warn', `canary ${e.verdict === 'pass' ? 'passed' : e.verdict === 'fail' ? 'failed' : e.verdict}`, { event, ...fields });
      return;
    }
    case 'ready-wait': {
      // One readable line while workers start: who is not ready yet, and what it last said.
      const who = e.workers.map((w) => `${e.generation}.${w.slot} (pid ${w.pid ?? '?'}${w.status ? `: ${w.status}` : ''})`).join(', ');
      logger.info(`generation ${e.generation} not ready after ${Math.round(e.waitingMs / 1000)} s, waiting for ${who}`, { event, generation: e.generation });
      return;
    }
    case 'warning':
      logger.warn(e.text, { event, generation: e.generation });
      return;
    case 'reload-rollback': {
      const { type: _t, text, ...fields } = e;
      logger.error(text, { event, ...fields });
      return;
    }
    case 'listener-stopped': {
      const { type: _t, text, ...fields } = e;
      logger.error(text, { event, ...fields });
      return;
    }
    case 'worker-priority': {
      const { type: _t, ...fields } = e;
      logger.warn(`worker ${e.generation}.${e.slot} keeps its boot priority (nice ${e.nice}): it could not be raised back at READY; later workers boot at the normal priority`, { event, ...fields });
      return;
    }
    case 'worker-boot-priority': {
      const { type: _t, ...fields } = e;
      logger.info(`worker ${e.generation}.${e.slot} still booting after ${Math.round(e.afterMs / 100) / 10} s at the boot priority: given nice ${e.nice} back so that it finishes (the serving workers left it little CPU)`, { event, ...fields });
      return;
    }
    case 'scale-rebalance': {
      const { type: _t, restarted, ...fields } = e;
      if (restarted === undefined) return logger.info('scale rebalance', { event, ...fields });
      logger.info(`${workersPhrase(e.generation, restarted)} restarted after a crash: the serving workers hand ${restarted.length === 1 ? 'it' : 'them'} ` +
        `${Math.round(e.share * 100)}% of their kept-alive connections (their clients had reconnected to the others)`, { event, restarted, ...fields });
      return;
    }
    case 'restart-rebalanced': {
      const { type: _t, ...fields } = e;
      logger.info(`${workersPhrase(e.generation, e.slots)} took ${e.handedOver} kept-alive connection${e.handedOver === 1 ? '' : 's'} from the serving workers in ${Math.round(e.ms / 100) / 10} s`, { event, ...fields });
      return;
    }
    case 'reload-refused':
      // Said where it is refused: the master's `reload refused` warning (an upgrade), the
      // stop's own lines; this event is for the counters.
      return;
    case 'master-stop': {
      const { type: _t, ...fields } = e;
      if (e.forced) {
        logger.warn(`master stopping: ${e.forced} worker${e.forced === 1 ? '' : 's'} still running at drainTimeout ${e.forced === 1 ? 'was' : 'were'} killed (SIGKILL); requests in flight there were cut`, { event, ...fields });
      } else logger.info('master stop', { event, ...fields });
      return;
    }
    case 'slot-failed': {
      const { type: _t, ...fields } = e;
      logger.error('worker slot failed: crash loop, not restarting', { event, ...fields });
      return;
    }
    default: {
      const { type, ...fields } = e;
      logger.info(type.replace(/-/g, ' '), { event, ...fields });
    }
  }
}
