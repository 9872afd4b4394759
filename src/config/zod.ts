/**
 * zod, loaded through its CommonJS build. Every ES entry of zod (`zod`, `zod/mini`,
 * `zod/v4/core`) re-exports `locales/index.js`, which imports ~50 locale modules, and
 * Node's ES loader opens the files of one module's imports all at once: validating a
 * config needed ~100 file descriptors and failed with EMFILE on `…/locales/km.js` under
 * `ulimit -n 96` (h21 F7). `require` reads each file synchronously (open, read, close),
 * one descriptor at a time. Only the schema modules import it; the rest of hitless stays
 * ESM and zod-free.
 */
import { createRequire } from 'node:module';
import type { z as zod } from 'zod';

const load = createRequire(import.meta.url);

/** zod's `z` namespace (values; import its types from 'zod' with `import type`). */
export const z: typeof zod = (load('zod') as { z: typeof zod }).z;
