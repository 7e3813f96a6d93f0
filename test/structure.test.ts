/**
 * The shape of gateway/ (docs/ARCHITECTURE.md): one direction of dependency, no import cycles, files small enough
 * to read in one sitting. Read from the sources' own import lines, type-only imports included.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/g;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** file → the files of this repository it imports (relative to ROOT, .ts). */
function importGraph(dirs: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of dirs.flatMap(sources)) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(IMPORT)) deps.push(path.join(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
    graph.set(file, deps);
  }
  return graph;
}

/** Every cycle found by a depth-first walk, each as the files around it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (!graph.has(d)) continue;
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (state.get(d) === undefined) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (state.get(f) === undefined) visit(f);
  return found;
}

const room = (file: string): string => {
  const parts = file.split(path.sep);
  return parts[0] === 'gateway' && parts.length > 2 ? parts[1]! : parts[0] === 'gateway' ? parts[1]!.replace(/\.ts$/, '') : parts[0]!;
};

test('gateway/ has no import cycle', () => {
  assert.deepEqual(
    cycles(importGraph(['gateway', 'php', 'config', 'core'])).map((c) => c.join(' → ')),
    [],
  );
});

test('core/ imports nothing of ours, config/ nothing but core/', () => {
  const wrong: string[] = [];
  for (const [file, deps] of importGraph(['core', 'config'])) {
    const may = room(file) === 'core' ? ['core'] : ['config', 'core'];
    for (const d of deps) if (!may.includes(room(d))) wrong.push(`${file} → ${d}`);
  }
  assert.deepEqual(wrong, []);
});

test('the rooms of gateway/ import in one direction: http ← route, gates, handlers, filters ← pipeline', () => {
  // What each room may import, besides itself, core/ and config/. Only handlers/ talk to PHP (http/ reads the
  // pools' statistics type for status pages); filters transform any handler's answer and know no handler.
  const allowed: Record<string, readonly string[]> = {
    http: ['php'],
    route: ['http'],
    gates: ['http'],
    handlers: ['http', 'php'],
    filters: ['http'],
  };
  const wrong: string[] = [];
  for (const [file, deps] of importGraph(['gateway'])) {
    const from = room(file);
    const may = allowed[from];
    if (may === undefined) continue;
    for (const d of deps) {
      const to = room(d);
      if (to !== from && to !== 'config' && to !== 'core' && !may.includes(to)) wrong.push(`${file} → ${d}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('pipeline.ts is the only file that composes handlers/ and filters/ (server.ts only builds them per configuration)', () => {
  // pipeline-options.ts is the pipeline's own options (types only, split off to keep pipeline.ts readable).
  const composers = new Set([path.join('gateway', 'pipeline.ts'), path.join('gateway', 'pipeline-options.ts'), path.join('gateway', 'server.ts')]);
  const both: string[] = [];
  for (const [file, deps] of importGraph(['gateway'])) {
    const rooms = new Set(deps.map(room));
    if (rooms.has('handlers') && rooms.has('filters') && !composers.has(file)) both.push(file);
  }
  assert.deepEqual(both, []);
});

test('nothing outside gateway/http/ asks which HTTP version a request came on', () => {
  const asking = sources('gateway').filter(
    (f) => !f.startsWith(path.join('gateway', 'http') + path.sep) && /httpVersionM(?:aj|in)or/.test(fs.readFileSync(path.join(ROOT, f), 'utf8')),
  );
  assert.deepEqual(asking, []);
});

test('no file of gateway/, php/, config/ or core/ is longer than one sitting (400 lines)', () => {
  const long: string[] = [];
  for (const file of ['gateway', 'php', 'config', 'core'].flatMap(sources)) {
    const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n').length;
    if (lines > 400) long.push(`${file}: ${lines} lines`);
  }
  assert.deepEqual(long, []);
});
