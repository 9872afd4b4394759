/**
 * The shapes `hitless deploy` works with: a normalised fleet (hosts with everything
 * resolved), what happened on each host, and the progress events the CLI prints.
 */

/** One host of the fleet, every default applied. */
export interface FleetHost {
  /** Shown in progress lines and the table. */
  name: string;
  /** ssh destination, and `{host}` in templates. */
  address: string;
  user: string | undefined;
  port: number | undefined;
  /** Private key file for ssh -i, `~/` expanded. */
  identity: string | undefined;
  /** The hitless.json key `identity` came from (`deploy.ssh.identity`, `deploy.hosts[1].identity`), for messages. */
  identityFrom?: string;
  /** App folder on the host (absolute). */
  appDir: string;
  /** Health URL on the host's own listener, placeholders filled in; undefined = no health gate. */
  health: string | undefined;
}

/** The `deploy` section of hitless.json, normalised. */
export interface FleetConfig {
  hosts: FleetHost[];
  /** Shell command running hitless on the hosts. */
  hitless: string;
  /** Extra ssh arguments, before the destination. */
  sshArgs: string[];
  /** Command template replacing ssh ({host}, {name}, {script}); undefined = ssh. */
  exec: string[] | undefined;
  /** Hosts released at once after the canary. */
  batch: number;
  /** How long the health URL must keep answering 2xx, in ms. */
  settleMs: number;
  /** Remote folder the artifact is uploaded to. */
  uploadDir: string;
  /** The config file the section came from (the deploy lock lives beside it). */
  configPath: string;
}

/**
 * What happened on a host:
 * - `live`: runs the new release and stayed healthy;
 * - `unchanged`: its content already equalled the new release (hitless skipped it);
 * - `failed`: the step that stopped the deploy happened here (the host is back on its release);
 * - `rolled-back`: went live, then was switched back because another host failed;
 * - `untouched`: the deploy stopped before reaching it;
 * - `rollback-failed`: needs a person: it could not be switched back.
 */
export type HostOutcome = 'live' | 'unchanged' | 'failed' | 'rolled-back' | 'untouched' | 'rollback-failed';

export interface HostResult {
  name: string;
  /** Release `current` named before the deploy (undefined: none). */
  before: string | undefined;
  /** Release `current` names now, as far as the deploy knows. */
  after: string | undefined;
  outcome: HostOutcome;
  /** The deploy switched it back with `hitless rollback` (also true for the failed host when it had gone live). */
  rolledBack?: boolean;
  /** Time spent on this host (upload, release, health, rollback), in ms. */
  ms: number;
  /** On failure: the step, the error code and message, the host's output (workers' last lines). */
  step?: 'upload' | 'release' | 'health' | 'rollback';
  code?: string;
  message?: string;
  output?: string[];
}

export interface FleetPlan {
  id: string;
  artifact: string;
  bytes: number;
  sha256: string;
  /** Host names per batch; the first batch is the canary alone. */
  batches: string[][];
}

export type FleetResult = FleetPlan & {
  status: 'live' | 'failed' | 'dry-run';
  hosts: HostResult[];
  /** The host and reason that stopped the deploy. */
  failure?: { host: string; step: string; code: string; message: string };
};

/** A progress line: Kamal-style `INFO [host] text`, with the host's output lines under it. */
export interface FleetEvent {
  level: 'info' | 'warn' | 'error';
  host?: string;
  text: string;
  output?: string[];
}
