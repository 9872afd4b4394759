/**
 * node:http and node:https for the in-app library, loaded as `require` loads them. An ESM `import`
 * of node:http builds that module's ESM facade, which reads every export, the lazy ones
 * too, and so loads undici and zlib: a CommonJS app that does not load them itself
 * (Express, a plain node:http app) paid for it at every worker boot only because this
 * library imported it (measured, Node 24, a CommonJS node:http app under hitless, 40 boots
 * each: CPU at READY median 230 ms with the import, 180 ms with `require`; Next.js loads
 * both itself and boots the same either way; bench/notes-latency.md, "Booting without
 * node:http's ESM facade"). Types still come from `import type`.
 */
// process.getBuiltinModule (Node 20.16+, 22.3+) hands out what `require` would, without an
// `import.meta.url` for createRequire: a bundler that turns the app into CommonJS (esbuild
// --format=cjs, ncc, webpack) replaces `import.meta` with `{}`, and the app crashed at load.
export const nodeHttp = process.getBuiltinModule('node:http');
export const nodeHttps = process.getBuiltinModule('node:https');
