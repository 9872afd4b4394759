/**
 * The shape of hitless.json (and of the flags merged over it), as a zod schema. It checks
 * types and simple ranges only; config.ts turns the checked input into a MasterConfig
 * (defaults, units, listener parsing, paths). There are no transforms here, so the schema
 * exports to JSON Schema for editors (docs/hitless.schema.json).
 */
import { constants } from 'node:os';
import type { ZodObject, input } from 'zod';
import { z } from './zod.js';
import { DURATION_HINT } from './duration.js';
import { durationSchema } from './duration-schema.js';
import { parseSize, SIZE_HINT, SIZE_PATTERN } from './size.js';
import { MAX_WORKERS } from './workers.js';
import {
  DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_STAY_READY_MS, DEFAULT_FETCH, DEFAULT_LOGS, DEFAULT_LOG_FORMAT, DEFAULT_READY_TIMEOUT_MS,
  DEFAULT_PRELOAD, DEFAULT_RELEASE_KEEP, DEFAULT_RESTART, DEFAULT_STOP_SIGNAL, DEFAULT_HANDOVER, DEFAULT_STRATEGY, DEFAULT_WATCH_DEBOUNCE_MS,
  DEFAULT_WORKERS, DEFAULT_CANARY, DEFAULT_DRAIN, STRATEGY_NAMES, DEFAULT_BOOT_NICE, DEFAULT_BOOT_CONCURRENCY, DEFAULT_HANDOVER_SPREAD_MS, DEFAULT_COMPILE_CACHE, DEFAULT_WARMUP_ROUNDS,
} from './defaults.js';
import { DEPLOY_EXPECTED, DEPLOY_OBJECT_SCHEMAS, deploySchema } from './deploy.js';

const duration = (description: string, fallback?: number, positive = false) =>
  durationSchema(positive)
    .meta({ description: `${description} Milliseconds, or a string like "500ms", "2s", "1.5m".`, ...(fallback === undefined ? {} : { default: fallback }) });
const size = (description: string, fallback: number) =>
  z.union([z.number().int().positive(), z.string().regex(SIZE_PATTERN, { abort: true }).refine((v) => (parseSize(v) ?? 0) >= 1, `expected a size above 0 bytes; ${SIZE_HINT}`)])
    .meta({ description: `${description} Bytes, or a string like "10M", "1G".`, default: fallback });
const nonEmpty = z.string().min(1);
const argv = z.array(nonEmpty).min(1);
/** The fetcher polls http(s) and also file:// (an artifact dropped on a shared disk). */
const httpUrl = z.url({ protocol: /^(https?|file)$/ });

/** Why a signal cannot stop workers gracefully, by name. */
const FORBIDDEN_SIGNALS: Record<string, string> = {
  SIGKILL: 'SIGKILL cannot be caught, so workers could not drain; hitless sends SIGKILL itself after drainTimeout',
  SIGSTOP: 'SIGSTOP cannot be caught and only pauses a process',
  SIGUSR1: "SIGUSR1 starts Node's debugger instead of stopping the worker",
};

/** Returns why `name` is not a usable stop signal (with the fix), or undefined when it is. */
export function checkStopSignal(name: string): string | undefined {
  const upper = name.toUpperCase();
  const guess = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (FORBIDDEN_SIGNALS[guess]) return `${FORBIDDEN_SIGNALS[guess]}; use "SIGTERM" (the default), "SIGINT" or "SIGQUIT"`;
  if (Object.hasOwn(constants.signals, name)) return undefined;
  if (Object.hasOwn(constants.signals, guess)) return `please rename it to "${guess}"`;
  return 'expected a signal name such as "SIGTERM", "SIGINT" or "SIGQUIT"';
}

export const listenObjectSchema = z.strictObject({
  name: z.string().optional(),
  address: z.string(),
  mode: z.string().optional().meta({ description: 'Octal file mode of a unix socket, like "0660".' }),
});

export const restartSchema = z.strictObject({
  backoffInitial: duration('First delay before restarting a crashed worker.', DEFAULT_RESTART.backoffInitial),
  backoffMax: duration('Ceiling of the exponential restart backoff.', DEFAULT_RESTART.backoffMax),
  maxRestarts: z.number().int().nonnegative().meta({ default: DEFAULT_RESTART.maxRestarts, description: 'Crashes of one slot within `window` before it is marked failed.' }),
  window: duration('Window in which crashes are counted.', DEFAULT_RESTART.window),
}).partial();

export const releaseSchema = z.strictObject({
  keep: z.number().int().min(1).meta({ default: DEFAULT_RELEASE_KEEP, description: 'Releases kept under releases/ that did not fail to go live; of the failed ones only the newest is kept.' }),
  prepare: argv.meta({ description: 'Command (argv array) run inside a new release folder before switching to it.' }),
}).partial();

export const watchSchema = z.strictObject({
  paths: z.array(nonEmpty).min(1).meta({ description: 'Files or folders (relative to the app folder) whose change triggers a reload.' }),
  debounce: duration('Quiet time after the last change before reloading.', DEFAULT_WATCH_DEBOUNCE_MS).optional(),
});

export const fetchSchema = z.strictObject({
  url: httpUrl.meta({ description: 'http(s):// or file:// URL of the release artifact (.tgz) to poll.' }),
  interval: duration('Polling interval.', DEFAULT_FETCH.interval, true).optional(),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).optional(),
  sha256Url: httpUrl.optional(),
  headers: z.record(z.string(), z.string().superRefine((value, ctx) => {
    // fetch() sends header values as bytes: a character above U+00FF (a "…" left from the
    // docs' example) or a line break would fail every poll with a TypeError naming no key.
    const bad = [...value].find((c) => c.charCodeAt(0) > 0xff || c === '\r' || c === '\n' || c === '\0');
    if (bad !== undefined) {
      ctx.addIssue({ code: 'custom', message: `a header value can hold only Latin-1 characters without line breaks; it has ${JSON.stringify(bad)} (U+${bad.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}): replace the placeholder with the real value` });
    }
  })).optional(),
  maxBytes: size('Largest artifact accepted.', DEFAULT_FETCH.maxBytes).optional(),
  timeout: duration('Give up on a download after this long.', DEFAULT_FETCH.timeout, true).optional(),
});

export const logsSchema = z.strictObject({
  mode: z.enum(['inherit', 'file']).meta({ default: DEFAULT_LOGS.mode }),
  dir: nonEmpty.meta({ default: DEFAULT_LOGS.dir, description: 'Folder of log files, relative to the app folder.' }),
  maxSize: size('Rotate a log file at this size.', DEFAULT_LOGS.maxSize),
  keep: z.number().int().min(1).meta({ default: DEFAULT_LOGS.keep }),
  tag: z.boolean().meta({ default: DEFAULT_LOGS.tag, description: 'Prefix worker lines with generation.slot.' }),
  timestamps: z.boolean().meta({ default: DEFAULT_LOGS.timestamps, description: 'Prefix worker lines with the time the master read them (ISO 8601, UTC), in both modes.' }),
}).partial();

export const canarySchema = z.strictObject({
  workers: z.number().int().positive().max(MAX_WORKERS).meta({ default: DEFAULT_CANARY.workers, description: 'New workers started first, beside the serving generation.' }),
  duration: duration('How long the canary\'s figures are compared with the serving generation\'s.', DEFAULT_CANARY.duration, true),
  warmup: duration('The first part of duration left out of the latency comparison (at most half of duration): a fresh process is slower while V8 compiles and its heap grows.', DEFAULT_CANARY.warmup),
  minRequests: z.number().int().nonnegative().meta({ default: DEFAULT_CANARY.minRequests, description: 'Fewer canary responses than this by the end of duration is inconclusive: the reload fails (ERR_CANARY_INCONCLUSIVE).' }),
  maxErrorRate: z.number().min(0).max(1).meta({ default: DEFAULT_CANARY.maxErrorRate, description: 'Highest 5xx share (0 to 1) the canary may show.' }),
  maxLatencyRatio: z.number().min(1).meta({ default: DEFAULT_CANARY.maxLatencyRatio, description: 'Highest canary p99 as a multiple of the serving generation\'s p99.' }),
  then: z.enum(['all', 'rolling']).meta({ default: DEFAULT_CANARY.then, description: 'How the rest of the generation goes live after a pass.' }),
  connections: z.union([z.literal('auto'), z.number().min(0).max(1), z.number().int().min(2)]).meta({
    default: DEFAULT_CANARY.connections,
    description: 'Kept-alive connections the serving workers hand to the canary while it is judged: "auto" (canary.workers / workers, at most half), a share from 0 to 1 of each serving worker\'s connections (0: none), or a whole number above 1 of connections in all.',
  }),
}).partial();

export const drainSchema = z.strictObject({
  spread: duration('Window over which an old worker closes its upgraded (WebSocket) connections with close 1001, evenly spread, so clients do not all reconnect at once; 0 closes them all at once.', DEFAULT_DRAIN.spread),
  reloadWait: duration('Longest a reload waits for old workers that cannot say they hold only upgraded connections (no in-app library or preload); then the reload is done and they drain in the background until drainTimeout.', DEFAULT_DRAIN.reloadWait),
  maxGenerations: z.number().int().min(1).meta({ default: DEFAULT_DRAIN.maxGenerations, description: 'At most this many old generations drain in the background at once; when a reload makes one more, the oldest is stopped at once (SIGKILL).' }),
}).partial();

export const metricsSchema = z.strictObject({
  listen: z.string().meta({ description: 'host:port of the Prometheus endpoint, like "127.0.0.1:9464".' }),
});

/** hitless.json, every key optional (command may come from the command line). */
export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  command: argv.meta({ description: 'Worker program and arguments, like ["node", "server.js"].' }),
  listen: z.array(z.union([z.string(), listenObjectSchema])).meta({ description: 'Listening sockets, "[name=]address" strings or {name, address, mode} objects.' }),
  workers: z.union([z.number().int().positive().max(MAX_WORKERS), z.literal('auto')]).meta({ default: DEFAULT_WORKERS }),
  readyTimeout: duration('How long new workers have to announce readiness.', DEFAULT_READY_TIMEOUT_MS, true),
  drainTimeout: duration('How long old workers have to drain before SIGKILL.', DEFAULT_DRAIN_TIMEOUT_MS),
  stayReady: duration('How long every new worker must have been ready before a reload is done (or a detached start says it serves): one that exits within it fails the reload, which rolls back to the old version. 0: no wait.', DEFAULT_STAY_READY_MS),
  readyAfter: z.union([duration('Declare a worker ready after it has been alive this long.'), z.null()]).meta({ default: null }),
  stopSignal: z.string().superRefine((name, ctx) => {
    const problem = checkStopSignal(name);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }).meta({ default: DEFAULT_STOP_SIGNAL }),
  env: z.record(z.string().regex(/^[^=\0]+$/), z.string()).meta({ description: 'Extra environment variables of workers.' }),
  cwd: nonEmpty.meta({ description: 'Working directory of workers (default: the app folder, or its current release).' }),
  strategy: z.enum(STRATEGY_NAMES).meta({ default: DEFAULT_STRATEGY }),
  canary: canarySchema,
  handover: z.boolean().meta({ default: DEFAULT_HANDOVER, description: 'On reload, hand idle keep-alive HTTP/1.1 connections to the new generation instead of closing them (Node workers using the in-app library).' }),
  handoverSpread: duration('For how long a reload paces its hand-over: each old worker sends its next connection only after 48 times as long as the previous one took to move, or sooner when that pace would not move all it has left within this time (1000 connections take the whole time, at ~1.8 ms of CPU each on 2 cores); what is left after it moves at full speed. 0: full speed from the start.', DEFAULT_HANDOVER_SPREAD_MS),
  drain: drainSchema,
  bootNice: z.number().int().min(0).max(39).meta({ default: DEFAULT_BOOT_NICE, description: 'Nice increment of a worker that starts while others serve (its threads, and its session under autogroup where the master has CAP_SYS_ADMIN), restored at READY or at half of readyTimeout, where the master may raise priority (root, CAP_SYS_NICE or RLIMIT_NICE); 0 turns it off.' }),
  bootConcurrency: z.union([z.literal('auto'), z.number().int().min(1).max(1024)]).meta({ default: DEFAULT_BOOT_CONCURRENCY, description: 'How many new workers boot at once while others serve (a reload, a scale-up); the next starts when one is READY. "auto": half the CPUs, at least 1, so a boot leaves the other cores to the serving workers.' }),
  compileCache: z.union([z.boolean(), nonEmpty]).meta({ default: DEFAULT_COMPILE_CACHE, description: 'Node\'s on-disk compile cache for workers (NODE_COMPILE_CACHE, Node >= 22.1): true = a folder in the run dir, a path = that folder (relative to the app folder), false = off.' }),
  warmup: z.array(z.string().regex(/^\/[^\s]*$/)).meta({ default: [], description: 'Paths (like "/" or "/api/health") requested from each new worker after READY, before a reload switches to it; a 5xx or no answer within readyTimeout fails the reload.' }),
  warmupRounds: z.number().int().min(1).max(100_000).meta({ default: DEFAULT_WARMUP_ROUNDS, description: 'How many times the warmup paths are requested from each new worker (in parallel over up to 8 handed-over keep-alive connections, at the boot priority): 1 loads what requests load lazily; a few thousand requests also let V8 optimise the code they run.' }),
  restart: restartSchema,
  runDir: nonEmpty.meta({ description: 'Folder of the control socket (default: a private folder derived from the app folder).' }),
  pidFile: nonEmpty,
  logFormat: z.enum(['text', 'json']).meta({ default: DEFAULT_LOG_FORMAT }),
  preload: z.boolean().meta({ default: DEFAULT_PRELOAD, description: 'Start Node workers with the hitless preload, so an app that calls listen(port) itself adopts the socket the master holds for that port (docs/frameworks.md).' }),
  release: releaseSchema,
  watch: watchSchema,
  fetch: fetchSchema,
  user: nonEmpty.meta({ description: 'Run workers as this user (name or numeric id as a string).' }),
  group: nonEmpty,
  logs: logsSchema,
  metrics: metricsSchema,
  deploy: deploySchema.meta({ description: 'Hosts for `hitless deploy` (docs/fleet.md); the master ignores it.' }),
}).partial();

export type ConfigInput = input<typeof configSchema>;

/** The object schema at each nested key path, to suggest close key names for unknown keys. */
export const OBJECT_SCHEMAS: Record<string, ZodObject> = {
  '': configSchema, restart: restartSchema, release: releaseSchema, watch: watchSchema,
  fetch: fetchSchema, logs: logsSchema, metrics: metricsSchema, canary: canarySchema, drain: drainSchema, 'listen[]': listenObjectSchema,
};

/** What each key expects, by path pattern (`[]` for an array index, `*` for a record key). */
export const EXPECTED: Record<string, string> = {
  command: 'expected a non-empty array of strings like ["node", "server.js"] (a single string is not split: write each argument separately)',
  'command[]': 'expected a non-empty string',
  listen: 'expected an array of addresses like ["127.0.0.1:8080"]',
  'listen[]': 'expected an address string like "127.0.0.1:8080" or an object {"name": "api", "address": "unix:/path.sock", "mode": "0660"}',
  workers: `expected a positive integer or "auto" (one per CPU), at most ${MAX_WORKERS}`,
  readyTimeout: `expected a duration; ${DURATION_HINT}`,
  drainTimeout: `expected a duration; ${DURATION_HINT}`,
  stayReady: `expected a duration (0: no wait); ${DURATION_HINT}`,
  readyAfter: `expected a duration or null (wait for READY=1); ${DURATION_HINT}`,
  stopSignal: 'expected a signal name such as "SIGTERM"',
  env: 'expected an object of strings like {"NODE_ENV": "production"}',
  'env.*': 'expected a string value (quote numbers: "3000")',
  cwd: 'expected a folder path',
  handover: 'expected true or false',
  handoverSpread: `expected a duration; ${DURATION_HINT}`,
  bootNice: 'expected a whole number from 0 (off) to 39, like 10 (nice increment of booting workers)',
  bootConcurrency: 'expected "auto" (half the CPUs) or a whole number from 1 to 1024, like 2 (workers booting at once during a reload)',
  compileCache: 'expected true (a folder in the run dir), false (off) or a folder path',
  warmup: 'expected an array of request paths like ["/", "/api/health"]',
  'warmup[]': 'expected a request path starting with "/" and without spaces, like "/api/health"',
  warmupRounds: 'expected a whole number from 1 to 100000, like 1000 (how many times the warmup paths are requested)',
  strategy: 'expected "all" (start a whole new generation, then drain the old), "rolling" (one worker at a time) or "canary" (a few new workers judged on their traffic first)',
  canary: 'expected an object like {"workers": 1, "duration": "30s", "maxErrorRate": 0.01}',
  'canary.workers': `expected a whole number from 1 to ${MAX_WORKERS}`,
  'canary.duration': `expected a duration; ${DURATION_HINT}`,
  'canary.warmup': `expected a duration; ${DURATION_HINT}`,
  'canary.minRequests': 'expected a whole number >= 0',
  'canary.maxErrorRate': 'expected a share from 0 to 1, like 0.01 for 1%',
  'canary.maxLatencyRatio': 'expected a number >= 1, like 2 (the canary\'s p99 may be at most twice the serving generation\'s)',
  'canary.then': 'expected "all" or "rolling"',
  drain: 'expected an object like {"spread": "5s", "maxGenerations": 3}',
  'drain.maxGenerations': 'expected a whole number >= 1',
  'canary.connections': 'expected "auto", a share from 0 to 1 like 0.25 (a quarter of each serving worker\'s kept-alive connections; 0: none) or a whole number of connections above 1 like 40',
  restart: 'expected an object like {"maxRestarts": 5, "window": "60s"}',
  'restart.maxRestarts': 'expected a whole number >= 0',
  runDir: 'expected a folder path', pidFile: 'expected a file path',
  logFormat: 'expected "text" or "json"',
  preload: 'expected true (default) or false (Node workers get no preload: the app must adopt the sockets itself)',
  release: 'expected an object like {"keep": 5}',
  'release.keep': 'expected a whole number >= 1',
  'release.prepare': 'expected a command as an array of strings like ["npm", "ci"]',
  watch: 'expected an object like {"paths": ["dist"], "debounce": "500ms"}',
  'watch.paths': 'expected a non-empty array of paths like ["dist", "config.json"]',
  fetch: 'expected an object like {"url": "https://example.com/app.tgz"}',
  'fetch.url': 'expected an http://, https:// or file:// URL',
  'fetch.sha256Url': 'expected an http://, https:// or file:// URL',
  'fetch.sha256': 'expected 64 hexadecimal characters (the output of sha256sum)',
  'fetch.headers': 'expected an object of strings like {"Authorization": "Bearer …"}',
  'fetch.headers.*': 'expected a string',
  'fetch.maxBytes': `expected a size; ${SIZE_HINT}`,
  user: 'expected a user name or numeric id as a string ("1000")',
  group: 'expected a group name or numeric id as a string ("1000")',
  logs: 'expected an object like {"mode": "file", "dir": "logs"}',
  'logs.mode': 'expected "inherit" (worker output goes to the master\'s stdout/stderr) or "file" (rotated files)',
  'logs.dir': 'expected a folder path',
  'logs.maxSize': `expected a size; ${SIZE_HINT}`,
  'logs.keep': 'expected a whole number >= 1',
  'logs.tag': 'expected true or false',
  'logs.timestamps': 'expected true or false',
  metrics: 'expected an object like {"listen": "127.0.0.1:9464"}',
  'metrics.listen': 'expected "host:port" like "127.0.0.1:9464"',
};
for (const key of ['drain.spread', 'drain.reloadWait', 'restart.backoffInitial', 'restart.backoffMax', 'restart.window', 'watch.debounce', 'fetch.interval', 'fetch.timeout']) {
  EXPECTED[key] = `expected a duration; ${DURATION_HINT}`;
}
Object.assign(EXPECTED, DEPLOY_EXPECTED);
Object.assign(OBJECT_SCHEMAS, DEPLOY_OBJECT_SCHEMAS);

/**
 * The JSON Schema of hitless.json (docs/hitless.schema.json), for editors.
 *
 * @example
 * writeFileSync('docs/hitless.schema.json', JSON.stringify(configJsonSchema(), null, 2) + '\n');
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'hitless.json',
  };
}
