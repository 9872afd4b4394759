/**
 * The `deploy` section of hitless.json: the hosts `hitless deploy` rolls a release across
 * (src/fleet/). Only the shape lives here, so the one config schema (and its JSON Schema
 * for editors) knows the key; the master itself never reads it.
 */
import type { ZodObject, input } from 'zod';
import { z } from './zod.js';
import { DURATION_HINT } from './duration.js';
import { durationSchema } from './duration-schema.js';

/** Defaults of the `deploy` section. */
export const DEFAULT_DEPLOY = {
  hitless: 'hitless',
  batch: 1,
  settle: 5_000,
  uploadDir: '/tmp',
} as const;

const nonEmpty = z.string().min(1);
const port = z.number().int().min(1).max(65_535);
const absolute = z.string().regex(/^\//);
/** {host} and {name} are filled in per host, so this is not checked as a URL until then. */
const healthUrl = z.string().regex(/^https?:\/\/\S+$/);

export const deployHostSchema = z.strictObject({
  name: nonEmpty.meta({ description: 'Name shown in progress lines and the table; also the ssh destination unless `address` is given.' }),
  address: nonEmpty.meta({ description: 'ssh destination (host name or IP), `{host}` in templates (default: name).' }).optional(),
  user: nonEmpty.optional(),
  port: port.optional(),
  identity: nonEmpty.optional(),
  appDir: absolute.meta({ description: 'App folder on this host (default: deploy.appDir).' }).optional(),
  health: healthUrl.meta({ description: 'Health URL of this host (default: deploy.health).' }).optional(),
});

export const deploySshSchema = z.strictObject({
  user: nonEmpty.meta({ description: 'Remote user (ssh -l); default: ssh\'s own choice.' }),
  port: port.meta({ description: 'Remote port (ssh -p).' }),
  identity: nonEmpty.meta({ description: 'Private key file (ssh -i).' }),
  args: z.array(z.string()).meta({ description: 'More ssh arguments, placed before the destination, like ["-o", "ProxyJump=bastion"].' }),
}).partial();

export const deploySchema = z.strictObject({
  hosts: z.array(z.union([nonEmpty, deployHostSchema])).min(1)
    .meta({ description: 'Hosts in rollout order: the first is the canary. A name, or an object with per-host settings.' }),
  appDir: absolute.meta({ description: 'App folder on every host (absolute), where its hitless.json and releases/ live.' }).optional(),
  hitless: nonEmpty.meta({ default: DEFAULT_DEPLOY.hitless, description: 'How to run hitless on the hosts, as a shell command ("npx hitless", "/opt/node/bin/hitless").' }).optional(),
  ssh: deploySshSchema.optional(),
  exec: z.array(nonEmpty).min(1)
    .meta({ description: 'Run remote commands with this instead of ssh; {host}, {name} and {script} are replaced, like ["docker", "exec", "-i", "{name}", "sh", "-c", "{script}"].' }).optional(),
  batch: z.number().int().min(1).meta({ default: DEFAULT_DEPLOY.batch, description: 'Hosts released at once after the canary.' }).optional(),
  health: healthUrl.meta({ description: 'Health URL checked on each host\'s own listener after its release, like "http://{host}:8080/healthz".' }).optional(),
  settle: durationSchema()
    .meta({ default: DEFAULT_DEPLOY.settle, description: 'How long the health URL must keep answering 2xx after a host\'s release. Milliseconds, or a string like "500ms", "2s".' }).optional(),
  uploadDir: absolute.meta({ default: DEFAULT_DEPLOY.uploadDir, description: 'Folder on the hosts the artifact is uploaded to (removed after the release).' }).optional(),
});

export type DeployInput = input<typeof deploySchema>;

/** Object schemas inside `deploy`, for "did you mean" on unknown keys. */
export const DEPLOY_OBJECT_SCHEMAS: Record<string, ZodObject> = {
  deploy: deploySchema, 'deploy.ssh': deploySshSchema, 'deploy.hosts[]': deployHostSchema,
};

/** What each key inside `deploy` expects, for config error messages. */
export const DEPLOY_EXPECTED: Record<string, string> = {
  deploy: 'expected an object like {"hosts": ["app1", "app2"], "appDir": "/srv/app", "health": "http://{host}:8080/healthz"}',
  'deploy.hosts': 'expected a non-empty array of host names or objects, like ["app1.example.com", {"name": "app2", "port": 2222}]',
  'deploy.hosts[]': 'expected a host name, or an object with name (required), address, user, port, identity, appDir, health',
  'deploy.hosts[].port': 'expected a port number 1-65535', 'deploy.ssh.port': 'expected a port number 1-65535',
  'deploy.hosts[].appDir': 'expected an absolute path on the host, like "/srv/app"',
  'deploy.appDir': 'expected an absolute path on the hosts, like "/srv/app"',
  'deploy.hosts[].health': 'expected an http(s) URL, like "http://10.0.0.2:8080/healthz"',
  'deploy.health': 'expected an http(s) URL; {host} and {name} are replaced per host: "http://{host}:8080/healthz"',
  'deploy.hitless': 'expected a shell command string, like "hitless" or "npx hitless"',
  'deploy.ssh': 'expected an object like {"user": "deploy", "port": 22, "identity": "~/.ssh/deploy"}',
  'deploy.ssh.args': 'expected an array of strings, like ["-o", "ProxyJump=bastion"]',
  'deploy.exec': 'expected a command as an array of strings with a "{script}" argument, like ["docker", "exec", "-i", "{name}", "sh", "-c", "{script}"]',
  'deploy.batch': 'expected a whole number >= 1',
  'deploy.settle': `expected a duration; ${DURATION_HINT}`,
  'deploy.uploadDir': 'expected an absolute path on the hosts, like "/tmp"',
};
