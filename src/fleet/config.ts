/**
 * Reads the `deploy` section of hitless.json and normalises it into a {@link FleetConfig}:
 * host strings become objects, per-host settings fall back to the section's, `{host}` and
 * `{name}` are filled into the health URL, durations become milliseconds. Every problem
 * is one ERR_CONFIG_INVALID naming the key, like the master's own config errors.
 */
import { homedir } from 'node:os';
import { basename } from 'node:path';
import { z } from '../config/zod.js';
import { HitlessError } from '../errors.js';
import { configError, configErrorFromZod, type ValueSources } from '../config/errors.js';
import { DEFAULT_DEPLOY, deploySchema } from '../config/deploy.js';
import { findConfigFile, readConfigFile } from '../config/file.js';
import { parseDuration } from '../config/duration.js';
import type { FleetConfig, FleetHost } from './types.js';

/** Only `deploy` is checked here: the rest of the file is the master's business. */
const fileSchema = z.object({ deploy: deploySchema });

const EXAMPLE = '"deploy": {"hosts": ["app1", "app2"], "appDir": "/srv/app", "health": "http://{host}:8080/healthz"}';

/** `~/x` → `$HOME/x`, as a shell would (ssh -i gets the path as typed). */
function expandHome(path: string | undefined): string | undefined {
  return path?.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

/** The placeholders of a health URL, filled in per host by {@link fillTemplate}. */
const PLACEHOLDERS = ['{host}', '{name}'];

/**
 * The first `{…}` of `template` that is not a placeholder (a typo like `{hots}` would
 * otherwise stay in the URL and fail only at the preflight, as a host name that does not
 * resolve), or undefined.
 *
 * @example
 * unknownPlaceholder('http://{hots}:8080/'); // '{hots}'
 */
export function unknownPlaceholder(template: string): string | undefined {
  return template.match(/\{[^{}]*\}/g)?.find((p) => !PLACEHOLDERS.includes(p));
}

/**
 * Fills `{host}` and `{name}` of a template with the host's values.
 *
 * @example
 * fillTemplate('http://{host}:8080/healthz', { name: 'app1', address: '10.0.0.11' }); // 'http://10.0.0.11:8080/healthz'
 */
export function fillTemplate(template: string, host: { name: string; address: string }): string {
  return template.replaceAll('{host}', host.address).replaceAll('{name}', host.name);
}

/**
 * Loads the fleet of the config file `configFlag` (or ./hitless.json).
 *
 * @throws HitlessError ERR_CONFIG_NOT_FOUND, ERR_CONFIG_PARSE, ERR_CONFIG_INVALID.
 * @example
 * const fleet = loadFleetConfig(values.config, process.cwd());
 * fleet.hosts.map((h) => h.name); // ['app1', 'app2', 'app3']
 */
export function loadFleetConfig(configFlag: string | undefined, cwd: string): FleetConfig {
  const configPath = findConfigFile(configFlag, cwd);
  if (!configPath) {
    throw new HitlessError('ERR_CONFIG_NOT_FOUND', `no hitless.json in ${cwd}: \`hitless deploy\` needs one with a deploy section (${EXAMPLE}), or pass --config`);
  }
  const input = readConfigFile(configPath);
  const sources: ValueSources = { file: configFlag ?? basename(configPath), flags: {} };
  if (input.deploy === undefined) {
    throw new HitlessError('ERR_CONFIG_INVALID', `${configPath} has no deploy section; add ${EXAMPLE} (see docs/fleet.md)`);
  }
  const parsed = fileSchema.safeParse(input);
  if (!parsed.success) throw configErrorFromZod(parsed.error, input, sources);
  const deploy = parsed.data.deploy;
  const fail = (path: PropertyKey[], value: unknown, problem: string): never => {
    throw configError(['deploy', ...path], value, problem, sources);
  };

  const names = new Set<string>();
  const hosts = deploy.hosts.map((entry, i): FleetHost => {
    const h = typeof entry === 'string' ? { name: entry } : entry;
    if (names.has(h.name)) fail(['hosts', i], entry, `host name "${h.name}" appears twice; give each host a unique name (and an "address" when two share one)`);
    names.add(h.name);
    const address = h.address ?? h.name;
    const appDir = h.appDir ?? deploy.appDir;
    if (appDir === undefined) fail(['appDir'], undefined, `no app folder for host "${h.name}": set deploy.appDir (like "/srv/app") or the host's own appDir`);
    const template = h.health ?? deploy.health;
    const healthKey = h.health !== undefined ? ['hosts', i, 'health'] : ['health'];
    const typo = template === undefined ? undefined : unknownPlaceholder(template);
    if (typo !== undefined) fail(healthKey, template, `${typo} is not a placeholder; only {host} (the host's address) and {name} (its name) are filled in`);
    const health = template === undefined ? undefined : fillTemplate(template, { name: h.name, address });
    if (health !== undefined && !URL.canParse(health)) fail(healthKey, template, `for host "${h.name}" it becomes ${health}, which is not a URL`);
    const identity = h.identity ?? deploy.ssh?.identity;
    return {
      name: h.name, address, appDir: appDir as string, health,
      user: h.user ?? deploy.ssh?.user,
      port: h.port ?? deploy.ssh?.port,
      identity: expandHome(identity),
      ...(identity !== undefined ? { identityFrom: h.identity !== undefined ? `deploy.hosts[${i}].identity` : 'deploy.ssh.identity' } : {}),
    };
  });
  if (deploy.exec !== undefined && !deploy.exec.some((arg) => arg.includes('{script}'))) {
    fail(['exec'], deploy.exec, 'it has no "{script}" argument: the remote shell script goes there, like ["docker", "exec", "-i", "{name}", "sh", "-c", "{script}"]');
  }
  return {
    hosts,
    hitless: deploy.hitless ?? DEFAULT_DEPLOY.hitless,
    sshArgs: deploy.ssh?.args ?? [],
    exec: deploy.exec,
    batch: deploy.batch ?? DEFAULT_DEPLOY.batch,
    settleMs: parseDuration(deploy.settle ?? DEFAULT_DEPLOY.settle),
    uploadDir: deploy.uploadDir ?? DEFAULT_DEPLOY.uploadDir,
    configPath,
  };
}

/**
 * The rollout order: the first host alone (the canary), then the rest in batches.
 *
 * @example
 * planBatches(['a', 'b', 'c', 'd'], 2); // [['a'], ['b', 'c'], ['d']]
 */
export function planBatches<T>(hosts: readonly T[], batch: number): T[][] {
  const [canary, ...rest] = hosts;
  if (canary === undefined) return [];
  const out: T[][] = [[canary]];
  for (let i = 0; i < rest.length; i += batch) out.push(rest.slice(i, i + batch));
  return out;
}
