/**
 * hitless in-app library: socket adoption, readiness and graceful shutdown for Node
 * servers, with zero runtime dependencies. See docs/API.md.
 */
export { listen } from './lib/listen.js';
export { ready, status } from './lib/ready.js';
export { shutdown } from './lib/shutdown.js';
export { onShutdown, track } from './lib/lifecycle.js';
export { serve } from './lib/serve.js';
export { workerInfo } from './lib/worker.js';
export { isShuttingDown, healthHandlers, type HealthHandlers } from './lib/health.js';
export {
  DEFAULT_HOOK_TIMEOUT,
  DEFAULT_IDLE_GRACE,
  DEFAULT_PORT,
  DEFAULT_SHUTDOWN_DELAY,
  DEFAULT_SHUTDOWN_TIMEOUT,
  DEFAULT_SPREAD,
  SD_LISTEN_FDS_START,
} from './lib/defaults.js';
export type {
  AnyServer,
  ListenOptions,
  ListenResult,
  ServeHandle,
  ServeOptions,
  ShutdownCounts,
  ShutdownOptions,
  ShutdownResult,
  TrackOptions,
  WorkerInfo,
} from './lib/types.js';
export { HitlessError, isHitlessError, codes, type HitlessErrorCode } from './errors.js';
