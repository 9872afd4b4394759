/** A stand-in MasterHandle for unit tests of the ops modules: an EventEmitter with status(). */
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { DEFAULT_CANARY, DEFAULT_DRAIN } from '../../src/config/defaults.js';
import type { MasterConfig } from '../../src/config/types.js';
import type { MasterEvent, MasterHandle, StatusSnapshot, WorkerStatus } from '../../src/core/types.js';
import { createLogger, type Logger } from '../../src/core/logger.js';

export class FakeMaster extends EventEmitter implements MasterHandle {
  workers: WorkerStatus[] = [];
  generation = 1;
  startedAt = Date.now();
  traffic: StatusSnapshot['traffic'];
  reloadRequests: { started: number; queued: number; merged: number; refused?: number } = { started: 0, queued: 0, merged: 0 };

  status(): StatusSnapshot {
    return {
      version: '0.0.0-test', pid: process.pid, startedAt: this.startedAt, uptimeMs: Date.now() - this.startedAt,
      state: 'running', generation: this.generation, release: undefined, listeners: [], workers: this.workers,
      lastReload: undefined, reloadQueued: false, reloadRequests: this.reloadRequests, ...(this.traffic ? { traffic: this.traffic } : {}),
    };
  }
  reload(): Promise<never> { return Promise.reject(new Error('not in the fake')); }
  stop(): Promise<void> { return Promise.resolve(); }
  emitEvent(e: MasterEvent): void { this.emit('event', e); }
}

export function fakeConfig(over: Partial<MasterConfig> = {}): MasterConfig {
  return {
    configPath: undefined, appDir: tmpdir(), command: ['node', 'server.js'], listen: [], workers: 1,
    readyTimeout: 10_000, drainTimeout: 10_000, stopSignal: 'SIGTERM', readyAfter: null, env: {}, cwd: tmpdir(),
    strategy: 'all', canary: { ...DEFAULT_CANARY }, handover: true, drain: { ...DEFAULT_DRAIN }, restart: { backoffInitial: 100, backoffMax: 1000, maxRestarts: 5, window: 60_000 },
    runDir: tmpdir(), pidFile: undefined, logFormat: 'text', release: { keep: 5, prepare: undefined },
    watch: undefined, fetch: undefined, user: undefined, group: undefined,
    logs: { mode: 'inherit', dir: tmpdir(), maxSize: 10 * 1024 * 1024, keep: 5, tag: true },
    metrics: undefined,
    ...over,
  };
}

/** A logger collecting its lines. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ format: 'text', write: (l) => lines.push(l) }), { lines });
}
