/**
 * `hitless reload`: start a new generation, wait until it is live (or rolled back) and
 * exit 0 only when it went live, so deploy scripts can trust the exit code.
 */
import type { Command } from '../command.js';
import { controlRequest } from '../../control/client.js';
import { describeChange } from '../../config/changes.js';
import { formatDuration } from '../../config/duration.js';
import type { ConfigChange } from '../../config/types.js';
import type { MasterEvent, ReloadOutcome } from '../../core/types.js';
import { CLIENT_FLAGS, parseFlags, parseTimeoutFlag, strategyFlag } from '../flags.js';
import { findRunDir } from '../../control/find.js';
import { ReloadProgress, stillPhrase, wasRefused } from '../format.js';
import { canaryLines } from '../traffic.js';
import { dropSeams, explainDrop, isDropped, masterPid } from '../../control/dropped.js';

const usage = `Usage: hitless reload [--canary | --strategy <name>] [--json] [--timeout <dur>] [--config <path>] [--run-dir <dir>]

The master first reads its configuration again (the file it was started from, with its
start flags over it) and prints what changed; an invalid file refuses the reload (exit 2)
and nothing is touched. Then it starts a new generation of workers from that
configuration, waits until every new worker is ready, and drains the old ones. If the new
workers fail (exit, or miss readyTimeout) they are stopped, the old generation keeps
serving, and the reason and the failed workers' last output lines are printed.
Exit code 0 only when the new generation went live.

With --canary, canary.workers new workers first serve beside the old generation for
canary.duration and their traffic is compared with it (docs/canary.md); on a fail
(ERR_CANARY_FAILED) or too little traffic (ERR_CANARY_INCONCLUSIVE) they are retired
and both sets of figures are printed.

Flags:
  --canary           this reload goes through a canary (the hitless.json "canary" settings)
  --strategy <name>  this reload's strategy: all, rolling or canary (default: the config's)
  --json             print the reload outcome as JSON (no progress lines)
  --timeout <dur>    stop waiting after this long (the reload goes on in the master)
  --config <path>    config file of the app (default: ./hitless.json if it exists)
  --run-dir <dir>    folder of the control socket, if the master was started with --run-dir
  -h, --help         show this help`;

/**
 * Prints progress phrases: one updating line on a terminal, plain lines otherwise. `keep`
 * prints one that the next must not replace (a starved canary was lent a connection: it
 * changes what the figures after it mean).
 *
 * @example
 * const p = progressPrinter(process.stdout);
 * p.show('spawning generation 3'); p.keep('canary generation 3 answered 0 …'); p.end();
 */
export function progressPrinter(out: Pick<NodeJS.WriteStream, 'isTTY' | 'write'>): { show(text: string): void; keep(text: string): void; end(): void } {
  let open = false;
  const end = (): void => {
    if (open) out.write('\n');
    open = false;
  };
  return {
    show(text) {
      if (out.isTTY) {
        out.write(`\r\x1b[Kreload: ${text}`);
        open = true;
      } else out.write(`reload: ${text}\n`);
    },
    keep(text) {
      if (open) out.write('\r\x1b[K');
      open = false;
      out.write(`reload: ${text}\n`);
    },
    end,
  };
}

export const command: Command = {
  name: 'reload',
  usage,
  async run(argv) {
    const { values } = parseFlags('reload', argv, {
      ...CLIENT_FLAGS, json: { type: 'boolean' }, timeout: { type: 'string' }, canary: { type: 'boolean' }, strategy: { type: 'string' },
    });
    if (values.help) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const timeoutMs = parseTimeoutFlag(values.timeout);
    const strategy = strategyFlag('reload', values.canary, values.strategy);
    // A config file the master cannot read either is named by the master's refusal below.
    const runDir = await findRunDir({ config: values.config, runDir: values['run-dir'], warn: () => {} });
    const progress = new ReloadProgress();
    const printer = progressPrinter(process.stdout);
    let configShown = false;
    const onEvent = values.json ? undefined : (event: MasterEvent): void => {
      if (event.type === 'reload-config') {
        if (configShown) return;
        configShown = true;
        printer.end();
        process.stdout.write(formatConfigChanges(event.changes, event.notes));
        return;
      }
      const text = progress.update(event);
      if (text && (event.type === 'canary-lend' || event.type === 'reload-rollback' || event.type === 'worker-warmup')) printer.keep(text);
      else if (text) printer.show(text);
    };
    let outcome: ReloadOutcome;
    // Asked first: a master that dies under the reload is named by it (control/dropped.ts).
    const pid = await masterPid(runDir, timeoutMs);
    try {
      const args = { reason: strategy === undefined ? 'hitless reload' : values.canary ? 'hitless reload --canary' : `hitless reload --strategy ${strategy}`, ...(strategy ? { strategy } : {}) };
      outcome = (await controlRequest(runDir, 'reload', args, { onEvent, timeoutMs })) as ReloadOutcome;
    } catch (err) {
      printer.end();
      if (!isDropped(err)) throw err;
      const verdict = await explainDrop({ cmd: 'reload', pid }, dropSeams(runDir));
      throw 'error' in verdict ? verdict.error : err;
    } finally {
      printer.end();
    }
    // Nothing was started because the configuration does not validate: a mistake to fix, exit 2.
    const failCode = outcome.error?.code.startsWith('ERR_CONFIG_') ? 2 : 1;
    if (values.json) {
      process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
      return outcome.ok ? 0 : failCode;
    }
    const joined = outcome.coalesced ? ' (joined a reload that was already queued)' : '';
    if (outcome.ok) {
      const forced = outcome.forced ? `, ${outcome.forced} old worker${outcome.forced === 1 ? '' : 's'} killed at drainTimeout` : '';
      if (outcome.canary) for (const line of canaryLines(outcome.canary)) process.stdout.write(`reload: ${line}\n`);
      process.stdout.write(`reload: done in ${formatDuration(outcome.durationMs)}, generation ${outcome.generation} is live${forced}${stillPhrase(outcome)}${joined}\n`);
      for (const warning of outcome.warnings ?? []) process.stdout.write(`reload: warning: ${warning}\n`);
      return 0;
    }
    const err = outcome.error;
    process.stderr.write(`${failureLine(outcome)}\n`);
    // The message names the first problem of an invalid configuration; the others follow.
    for (const problem of err?.problems?.slice(1) ?? []) process.stderr.write(`  ${problem}\n`);
    if (outcome.canary) for (const line of canaryLines(outcome.canary, outcome)) process.stderr.write(`${line}\n`);
    if (err?.output.length) {
      process.stderr.write(`last output of generation ${outcome.attempted}:\n`);
      for (const line of err.output) process.stderr.write(`  | ${line}\n`);
    }
    // The rollback failed too: why the old version did not start, which is what to fix now.
    const back = outcome.rollback?.error;
    if (back && outcome.rollback) {
      process.stderr.write(`the rollback failed: ${back.message} (${back.code})\n`);
      if (back.output.length) process.stderr.write(`last output of generation ${outcome.rollback.generation}:\n`);
      for (const line of back.output) process.stderr.write(`  | ${line}\n`);
    }
    return failCode;
  },
};

/**
 * What `hitless reload` prints before the phases: "no configuration change", or one line
 * per changed key (secrets hidden), then remarks such as a kept `hitless scale` override.
 *
 * @example
 * formatConfigChanges([{ key: 'workers', from: '2', to: '3' }], []);
 * // "reload: configuration changes:\n  workers: 2 → 3\n"
 */
export function formatConfigChanges(changes: ConfigChange[], notes: string[]): string {
  const lines = changes.length === 0 ? ['reload: no configuration change'] : ['reload: configuration changes:', ...changes.map((c) => `  ${describeChange(c)}`)];
  for (const note of notes) lines.push(`reload: note: ${note}`);
  return lines.join('\n') + '\n';
}

/**
 * The one line of a reload that did not go live: what happened and what serves now.
 *
 * @example
 * failureLine(outcome); // 'hitless: reload failed: worker 8.0 … (ERR_WORKER_EXITED); generation 7 keeps serving'
 */
export function failureLine(outcome: ReloadOutcome): string {
  const err = outcome.error;
  const what = wasRefused(outcome) ? 'reload refused' : 'reload failed';
  // A stop ends the master with every generation: nothing keeps serving then.
  const r = outcome.rollback;
  const joined = outcome.coalesced ? ' (joined a reload that was already queued)' : '';
  // Said once (h24 F6: "the master is stopping; no reload (ERR_STOPPING); the master is stopping, so …").
  if (err?.code === 'ERR_STOPPING') return `hitless: ${what}: ${err.message}, and every generation stops with it (${err.code})${joined}`;
  const after = r?.error?.code === 'ERR_STOPPING' ? 'the master is stopping, so no generation keeps serving'
    : r?.ok === true ? `rolled back: generation ${r.generation} serves generation ${r.version}'s version`
    : r ? `the rollback to generation ${r.version}'s version failed too: generation ${outcome.generation} serves, its crashed workers restarted with backoff`
    : `generation ${outcome.generation} keeps serving`;
  return `hitless: ${what}: ${err ? `${err.message} (${err.code})` : outcome.reason}; ${after}${joined}`;
}
