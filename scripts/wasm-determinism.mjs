#!/usr/bin/env node
// Prove that the simulator is deterministic across targets: for every
// scenario file and seed, the trace hash computed by the wasm32 module
// (shen_wasm_viz, wasm-bindgen export `traceHash`) must equal the one the
// native binary reports (`shen sim run --scenario FILE --seed S --json`,
// field `trace_hash`, 16 lowercase hex digits).
//
//   node scripts/wasm-determinism.mjs [MODULE] [--seeds A..B] [--shen PATH]
//                                     [--scenarios DIR] [--jobs N]
//
//   MODULE        the module's Node.js glue, as `wasm-bindgen --target nodejs`
//                 writes it (default: ${CARGO_TARGET_DIR:-target}/viz-node/
//                 shen_wasm_viz.js, written by scripts/build-viz.sh)
//   --seeds A..B  seeds to compare, B excluded (default 0..20)
//   --shen PATH   the native binary (default: $SHEN_BIN, else
//                 ${CARGO_TARGET_DIR:-target}/debug/shen)
//   --scenarios D directory of *.toml / *.json scenarios (default scenarios/)
//   --jobs N      native runs in parallel (default: one per core)
//
// Prints one line per scenario, every mismatch with the command replaying
// it, and finally `wasm-determinism: N passed, M failed` (one check per
// scenario and seed). Exit code: 0 when every check passed, 1 when one
// failed (mismatch or a run that errored), 2 for bad usage or setup.
//
// Node 20, no npm packages.

import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TARGET_DIR = resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const PREFIX = 'wasm-determinism';

function usageError(message) {
  console.error(`${PREFIX}: error: ${message}`);
  console.error(`${PREFIX}: 0 passed, 1 failed`);
  process.exit(2);
}

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const opts = {
    module: null,
    seeds: [0n, 20n],
    shen: process.env.SHEN_BIN || join(TARGET_DIR, 'debug', 'shen'),
    scenarios: join(ROOT, 'scenarios'),
    jobs: availableParallelism(),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--seeds') {
      const m = /^(\d+)\.\.(=?)(\d+)$/.exec(value());
      if (!m) usageError('--seeds wants A..B or A..=B');
      const start = BigInt(m[1]);
      const end = BigInt(m[3]) + (m[2] ? 1n : 0n);
      if (end <= start || end > 2n ** 64n) usageError('--seeds: empty or out of u64 range');
      opts.seeds = [start, end];
    } else if (a === '--shen') {
      opts.shen = resolve(value());
    } else if (a === '--scenarios') {
      opts.scenarios = resolve(value());
    } else if (a === '--jobs') {
      opts.jobs = Number.parseInt(value(), 10);
      if (!(opts.jobs >= 1)) usageError('--jobs wants a positive number');
    } else if (a === '-h' || a === '--help') {
      const text = readFileSync(fileURLToPath(import.meta.url), 'utf8');
      const head = text.split('\n').slice(1).filter((l) => l.startsWith('//'));
      console.log(head.map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
    } else if (a.startsWith('-')) {
      usageError(`unknown option ${a} (see --help)`);
    } else if (opts.module === null) {
      opts.module = resolve(a);
    } else {
      usageError(`unexpected argument ${a}`);
    }
  }
  if (opts.module === null) {
    opts.module = join(TARGET_DIR, 'viz-node', 'shen_wasm_viz.js');
    if (!existsSync(opts.module)) {
      usageError(`no MODULE argument and no ${opts.module} (run scripts/build-viz.sh first)`);
    }
  }
  return opts;
}

// --------------------------------------------------------------------- wasm
async function loadModule(path) {
  let m;
  try {
    // wasm-bindgen's nodejs target is CommonJS and loads its .wasm itself.
    m = createRequire(import.meta.url)(path);
  } catch (e) {
    usageError(`cannot load the wasm module ${path}: ${e.message}`);
  }
  if (typeof m.traceHash !== 'function') usageError(`${path} does not export traceHash`);
  return m;
}

// The trace hash of `text` for each seed, as 16 hex digits, or { error }.
function wasmHashes(m, text, seeds) {
  const out = new Map();
  for (const seed of seeds) {
    try {
      out.set(seed, { hash: m.traceHash(text, seed) });
    } catch (e) {
      // A JsError (bad scenario) or a trap (a Rust panic aborts).
      out.set(seed, { error: e.message });
    }
  }
  return out;
}

// ------------------------------------------------------------------- native
function nativeHash(shen, file, seed) {
  const args = ['sim', 'run', '--scenario', file, '--seed', seed.toString(), '--json'];
  return new Promise((done) => {
    execFile(shen, args, { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      // Exit 1 only means an expectation failed: the report is still there.
      const code = err ? err.code : 0;
      if (err && code !== 1) {
        const why = err.killed ? 'timed out' : `exit ${code ?? err.signal}`;
        done({ error: `native run ${why}: ${stderr.trim() || err.message}` });
        return;
      }
      try {
        const report = JSON.parse(stdout);
        if (!/^[0-9a-f]{16}$/.test(report.trace_hash)) {
          throw new Error(`trace_hash is ${JSON.stringify(report.trace_hash)}`);
        }
        // Seeds are u64: read it from the text, JSON.parse rounds big ones.
        const reported = /"seed":\s*(\d+)/.exec(stdout)?.[1];
        if (reported !== seed.toString()) {
          throw new Error(`report is for seed ${reported}`);
        }
        done({ hash: report.trace_hash });
      } catch (e) {
        done({ error: `bad native report: ${e.message}` });
      }
    });
  });
}

// Run `tasks` (functions returning promises), at most `jobs` at a time.
async function pool(tasks, jobs) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  return results;
}

// --------------------------------------------------------------------- main
const t0 = performance.now();
const opts = parseArgs(process.argv.slice(2));
if (!existsSync(opts.shen)) {
  usageError(`native binary ${opts.shen} not found (cargo build -p shen-node --bin shen)`);
}
let files;
try {
  files = readdirSync(opts.scenarios)
    .filter((f) => f.endsWith('.toml') || f.endsWith('.json'))
    .sort()
    .map((f) => join(opts.scenarios, f));
} catch (e) {
  usageError(`cannot list ${opts.scenarios}: ${e.message}`);
}
if (files.length === 0) usageError(`no *.toml or *.json scenario in ${opts.scenarios}`);
const seeds = [];
for (let s = opts.seeds[0]; s < opts.seeds[1]; s++) seeds.push(s);

const x = await loadModule(opts.module);
const rel = (p) => (p.startsWith(ROOT + '/') ? p.slice(ROOT.length + 1) : p);
console.log(`${PREFIX}: module ${rel(opts.module)}, native ${rel(opts.shen)}, ` +
  `${files.length} scenarios x seeds ${opts.seeds[0]}..${opts.seeds[1]}`);

// Native runs go to child processes; start them all (bounded) first, then
// hash in wasm on this thread while they run.
const nativeStart = performance.now();
let nativeSecs = 0;
const nativeAll = pool(
  files.flatMap((f) => seeds.map((s) => () => nativeHash(opts.shen, f, s))),
  opts.jobs,
).then((r) => {
  nativeSecs = (performance.now() - nativeStart) / 1000;
  return r;
});
// Let the first native processes spawn before the wasm work blocks the loop.
await new Promise((r) => setTimeout(r, 0));

const wasmStart = performance.now();
const wasm = files.map((f) => wasmHashes(x, readFileSync(f, 'utf8'), seeds));
const wasmSecs = (performance.now() - wasmStart) / 1000;
const native = await nativeAll;

let passed = 0;
let failed = 0;
files.forEach((file, fi) => {
  const problems = [];
  seeds.forEach((seed, si) => {
    const n = native[fi * seeds.length + si];
    const w = wasm[fi].get(seed);
    const replay = `shen sim run --scenario ${rel(file)} --seed ${seed} --json`;
    if (n.error || w.error) {
      problems.push(`  seed ${seed} ERROR: ${n.error ?? ''}${n.error && w.error ? '; ' : ''}` +
        `${w.error ? `wasm: ${w.error}` : ''}\n    replay: ${replay}`);
    } else if (n.hash !== w.hash) {
      problems.push(`  seed ${seed} MISMATCH: native ${n.hash}, wasm ${w.hash}\n    replay: ${replay}`);
    } else {
      passed++;
      return;
    }
    failed++;
  });
  const ok = seeds.length - problems.length;
  console.log(`  ${basename(file)}: ${ok}/${seeds.length} seeds identical` +
    (problems.length ? '' : ` (seed ${seeds[0]}: ${native[fi * seeds.length].hash})`));
  for (const p of problems) console.log(p);
});

const total = (performance.now() - t0) / 1000;
console.log(`  time: wasm ${wasmSecs.toFixed(1)}s, native ${nativeSecs.toFixed(1)}s ` +
  `(${opts.jobs} jobs), total ${total.toFixed(1)}s`);
console.log(`${PREFIX}: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
