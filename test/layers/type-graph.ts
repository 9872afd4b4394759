/**
 * The import graph as the TypeScript compiler sees it, type-only imports included, written
 * out as a tree of stub JavaScript modules that dependency-cruiser checks with the same
 * rules (.dependency-cruiser.cjs) as the compiled tree.
 *
 * Why not dependency-cruiser's own `tsPreCompilationDeps`: it needs the TypeScript
 * compiler's JavaScript API, which TypeScript 7 (the native compiler this project builds
 * with) does not have, and the compiled JavaScript it checks otherwise has lost every
 * `import type` (issue 21: a type-only cycle in core/ went unseen). So the compiler itself
 * lists the edges: `tsc --listFilesOnly --traceResolution` resolves every module specifier
 * of every file (type-only ones too) without type-checking, in under a second, and prints
 * one "Resolving module 'x' from 'file'" / "Module name 'x' was successfully resolved to
 * 'target'" pair per import. Each source file becomes `build/<same path>.js` holding one
 * `import '…';` per edge, so dependency-cruiser's cycle and layer rules apply unchanged.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';

/** One import of a source file: the specifier as written, and the project file it names (if any). */
export interface Edge {
  from: string;
  specifier: string;
  /** Absolute path of the project source it resolved to; undefined for packages and built-ins. */
  to: string | undefined;
}

const RESOLVING = /^======== Resolving module '([^']+)' from '([^']+)'\. ========$/;
const RESOLVED = /^======== Module name '([^']+)' was successfully resolved to '([^']+)'/;
const NOT_RESOLVED = /^======== Module name '([^']+)' was not resolved\. ========$/;

/**
 * Every file under `dirs` of `root` and every import in them, as the compiler resolves them
 * with `root`'s tsconfig.json (its `include` replaced by `dirs`). `tmp`: a folder for the
 * compiler's configuration.
 *
 * @example
 * const { edges } = compilerGraph('/repo', ['src', 'bench'], tmp);
 * edges.find((e) => e.specifier === './reload.js'); // { from: '/repo/src/core/types.ts', to: '/repo/src/core/reload.ts', … }
 */
export function compilerGraph(root: string, dirs: string[], tmp: string): { files: string[]; edges: Edge[] } {
  // This project's compiler, whatever tree it reads.
  const tsc = createRequire(import.meta.url).resolve('typescript/package.json').replace(/package\.json$/, 'bin/tsc');
  const config = join(tmp, 'tsconfig.graph.json');
  const include = dirs.map((d) => join(root, d));
  const compilerOptions = { noEmit: true, incremental: false, typeRoots: [join(root, 'node_modules', '@types')] };
  writeFileSync(config, JSON.stringify({ extends: join(root, 'tsconfig.json'), compilerOptions, include }));
  const r = spawnSync(process.execPath, [tsc, '-p', config, '--listFilesOnly', '--traceResolution'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`tsc --traceResolution failed (${String(r.status)}):\n${r.stdout.slice(-2000)}${r.stderr}`);
  const inside = (file: string): boolean => include.some((d) => file.startsWith(d + sep));
  const edges: Edge[] = [];
  const files: string[] = [];
  let pending: { from: string; specifier: string } | undefined;
  for (const line of r.stdout.split('\n')) {
    // --listFilesOnly prints the program's files, one absolute path a line, after the trace.
    if (inside(line) && !line.endsWith('.d.ts')) files.push(line);
    let m = RESOLVING.exec(line);
    if (m) {
      pending = inside(m[2]!) ? { from: m[2]!, specifier: m[1]! } : undefined;
      continue;
    }
    if (!pending) continue;
    m = RESOLVED.exec(line);
    if (m && m[1] === pending.specifier) {
      const target = m[2]!;
      edges.push({ ...pending, to: target.includes(`${sep}node_modules${sep}`) ? undefined : target });
      pending = undefined;
    } else if ((m = NOT_RESOLVED.exec(line)) && m[1] === pending.specifier) {
      edges.push({ ...pending, to: undefined });
      pending = undefined;
    }
  }
  if (files.length === 0) throw new Error(`tsc listed no file under ${dirs.join(', ')}:\n${r.stdout.slice(-2000)}`);
  return { files, edges };
}

/** `src/core/types.ts` → `build/src/core/types.js`: where the compiled module would be. */
const stubPath = (root: string, file: string): string => join('build', relative(root, file)).replace(/\.tsx?$/, '.js');

/**
 * Writes one stub module per file of `graph` under `out`, importing what the source
 * imports: project files by their stub's relative path, packages and built-ins by their
 * specifier. Returns how many stubs it wrote.
 *
 * @example
 * writeStubTree('/repo', compilerGraph('/repo', ['src'], tmp), '/repo/build/.type-graph');
 */
export function writeStubTree(root: string, { files, edges }: { files: string[]; edges: Edge[] }, out: string): number {
  const imports = new Map<string, Set<string>>();
  for (const f of files) imports.set(stubPath(root, f), new Set());
  for (const e of edges) {
    const from = stubPath(root, e.from);
    const set = imports.get(from) ?? new Set<string>();
    imports.set(from, set);
    if (e.to === undefined) set.add(e.specifier);
    else {
      const rel = relative(dirname(from), stubPath(root, e.to)).split(sep).join('/');
      set.add(rel.startsWith('.') ? rel : `./${rel}`);
    }
  }
  for (const [file, specs] of imports) {
    mkdirSync(dirname(join(out, file)), { recursive: true });
    writeFileSync(join(out, file), [...specs].map((s) => `import '${s}';\n`).join('') || 'export {};\n');
  }
  return imports.size;
}
