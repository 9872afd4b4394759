/**
 * hitless's layers, checked by `npm test` (test/layers) twice with these rules: on the
 * compiled JavaScript (build/src, build/bench), and on the import graph the TypeScript
 * compiler resolves, type-only imports included (test/layers/type-graph.ts writes it out as
 * stub modules under the same paths), so a cycle made of `import type` fails too. Each
 * folder imports only from the layers below it:
 *
 *   ws                                   hitless/ws: the opt-in WebSocket hand-over, an entry point
 *                                        of its own (imports lib/ and the `ws` peer dependency)
 *   cli                                  the `hitless` command
 *   master                               composition root (master.ts): wires the rest
 *   control · release · ops · fleet      the control socket and the optional parts
 *   core                                 supervisor, generations, workers, reload phases
 *   config                               hitless.json + flags -> MasterConfig
 *   lib · text · errors · process-alive  the in-app library (zero dependencies) and shared leaves
 */
const above = (...names) => `^build/src/(${names.join('|')})(/|\\.js$)`;

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'import cycles hide who owns what', from: {}, to: { circular: true } },
    {
      name: 'lib-is-self-contained', severity: 'error',
      comment: 'the in-app library imports nothing of the master, the CLI or the config layer',
      from: { path: '^build/src/(lib/|index\\.js$)' },
      to: { path: '^build/src/', pathNot: '^build/src/(lib/|errors\\.js$)' },
    },
    {
      name: 'lib-has-no-dependencies', severity: 'error',
      comment: 'the in-app library has zero runtime dependencies',
      from: { path: '^build/src/(lib/|index\\.js$)' },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'ws-entry-imports-lib-only', severity: 'error',
      comment: 'hitless/ws builds on the in-app library and nothing of the master',
      from: { path: '^build/src/ws/' },
      to: { path: '^build/src/', pathNot: '^build/src/(lib/|ws/|errors\\.js$)' },
    },
    {
      name: 'only-hitless-ws-imports-ws', severity: 'error',
      comment: 'ws is an optional peer dependency: only the hitless/ws entry point may load it, and nothing imports that entry point',
      from: { path: '^build/src/', pathNot: '^build/src/ws/' },
      to: { path: ['(^|/)node_modules/ws/', '^build/src/ws/'] },
    },
    { name: 'leaves-import-nothing', severity: 'error', from: { path: '^build/src/text/' }, to: { path: '^build/src/', pathNot: '^build/src/(text/|errors\\.js$)' } },
    { name: 'config-imports-downward', severity: 'error', from: { path: '^build/src/config/' }, to: { path: above('core', 'control', 'release', 'ops', 'fleet', 'preload', 'master', 'cli') } },
    { name: 'core-imports-downward', severity: 'error', comment: 'operations and releases are not imported by the core', from: { path: '^build/src/core/' }, to: { path: above('control', 'release', 'ops', 'fleet', 'preload', 'master', 'cli') } },
    { name: 'parts-import-downward', severity: 'error', from: { path: '^build/src/(control|release|ops|fleet|preload)/' }, to: { path: above('master', 'cli') } },
    { name: 'master-below-cli', severity: 'error', from: { path: '^build/src/master/' }, to: { path: above('cli') } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.d\\.ts$' },
    moduleSystems: ['es6'],
  },
};
