/**
 * The shape of one benchmark run's results (bench/results/*.json): what run.ts writes and
 * report.ts and report-handover.ts read. Its own module so that the two reports depend on
 * it and not on each other.
 */
import type { ThroughputRow } from './scenarios/throughput.js';
import type { ReloadRow } from './scenarios/reload.js';
import type { CostRow } from './scenarios/cost.js';
import type { FootprintResult } from './scenarios/footprint.js';
import type { PacedRow } from './scenarios/paced.js';
import type { IdleRow } from './scenarios/handover10k.js';
import type { LatencyOptions, LatencyRow } from './scenarios/latency.js';
import type { BootRow } from './scenarios/boot.js';

export interface Machine {
  nproc: number;
  cpu: string;
  kernel: string;
  node: string;
  pm2: string;
  wrk: string;
  hitlessCommit: string;
  /** 1-minute load average at the start and end of the run (other work on the machine). */
  loadavg: { start: number; end: number };
}

export interface Results {
  date: string;
  quick: boolean;
  command: string;
  machine: Machine;
  throughput: ThroughputRow[];
  reload: ReloadRow[];
  boot: { medianMs: number; maxMs: number; samples: number[] } | undefined;
  cost: CostRow[];
  footprint: FootprintResult | undefined;
  /** Connection hand-over (section 5); may come from a later, partial run than the rest. */
  handover?: HandoverResults;
  /** Reload latency (section 6, issue 23); may come from a later, partial run. */
  latency?: LatencyResults;
  targets: Verdict[];
}

export interface HandoverResults {
  date: string;
  command: string;
  machine: Machine;
  /** Where these figures are saved (set when the docs are rendered from several runs). */
  resultsFile?: string;
  paced: PacedRow[];
  idle: IdleRow[];
}

export interface Verdict {
  target: string;
  met: boolean;
  measured: string;
}

export interface LatencyResults {
  date: string;
  command: string;
  machine: Machine & { haproxy?: string | undefined };
  options: Omit<LatencyOptions, 'log' | 'nextDir' | 'only'>;
  /** The Next.js app measured (undefined: its targets were skipped). */
  nextDir: string | undefined;
  resultsFile?: string;
  rows: LatencyRow[];
  /** Boot cost with and without the compile cache (`--only boot`). */
  boot?: BootRow[];
}
