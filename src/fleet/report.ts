/**
 * How a deploy reads in a terminal: Kamal-style progress lines (`  INFO [app1] …`) with a
 * host's output indented under them, the per-host table at the end, and the one-line
 * summary of a failed deploy.
 */
import { renderTable } from '../text/table.js';
import { formatDuration } from '../config/duration.js';
import type { FleetEvent, FleetResult, HostOutcome } from './types.js';

const LEVEL: Record<FleetEvent['level'], string> = { info: ' INFO', warn: ' WARN', error: 'ERROR' };

/**
 * One progress event as text lines (no trailing newline).
 *
 * @example
 * formatEvent({ level: 'info', host: 'app1', text: 'release v2 is live' }); // ' INFO [app1] release v2 is live'
 */
export function formatEvent(e: FleetEvent): string {
  const tag = e.host ? `[${e.host}] ` : '';
  const pad = ' '.repeat(LEVEL[e.level].length + 1);
  return [`${LEVEL[e.level]} ${tag}${e.text}`, ...(e.output ?? []).map((line) => `${pad}${tag}| ${line}`)].join('\n');
}

const OUTCOME: Record<HostOutcome, string> = {
  live: 'live', unchanged: 'unchanged (identical)', failed: 'FAILED', 'rolled-back': 'rolled back',
  untouched: 'untouched', 'rollback-failed': 'ROLLBACK FAILED',
};

/**
 * The per-host table: release before and after, outcome, time on the host.
 *
 * @example
 * formatTable(result);
 * // HOST  BEFORE  AFTER  OUTCOME      TIME
 * // app1  v1      v1     rolled back  1.2 s
 */
export function formatTable(result: FleetResult): string {
  const rows = [['HOST', 'BEFORE', 'AFTER', 'OUTCOME', 'TIME', 'DETAIL']];
  for (const h of result.hosts) {
    const detail = h.outcome === 'failed' || h.outcome === 'rollback-failed' ? `${h.step ?? ''} ${h.code ?? ''}: ${h.message ?? ''}`.trim() : '';
    rows.push([h.name, h.before ?? '-', h.after ?? '-', OUTCOME[h.outcome], h.outcome === 'untouched' ? '-' : formatDuration(h.ms), detail.length > 100 ? `${detail.slice(0, 97)}...` : detail]);
  }
  return renderTable(rows);
}

/**
 * The last line of a failed deploy: where it failed, what was rolled back, what needs a person.
 *
 * @example
 * describeFailure(result); // 'deploy v2 failed on app2 at release (ERR_WORKER_EXITED: …); rolled back app1; no host runs v2'
 */
export function describeFailure(result: FleetResult): string {
  const f = result.failure;
  const back = result.hosts.filter((h) => h.rolledBack).map((h) => h.name);
  const stuck = result.hosts.filter((h) => h.outcome === 'rollback-failed').map((h) => h.name);
  const onNew = result.hosts.filter((h) => h.after === result.id && h.before !== result.id).map((h) => h.name);
  const head = f?.step === 'interrupted'
    ? `deploy ${result.id} ${f.message}`
    : `deploy ${result.id} failed on ${f?.host ?? '?'} at ${f?.step ?? '?'} (${f?.code ?? '?'}: ${f?.message ?? ''})`;
  return [
    head,
    back.length ? `rolled back ${back.join(', ')}` : 'nothing to roll back',
    stuck.length ? `COULD NOT ROLL BACK ${stuck.join(', ')}: see the table` : onNew.length ? `still on ${result.id}: ${onNew.join(', ')}` : `no host runs ${result.id}`,
  ].join('; ');
}
