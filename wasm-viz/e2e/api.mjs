#!/usr/bin/env node
// Tests of the wasm-bindgen API exactly as the page gets it, run on the real
// wasm module in Node.js (scripts/build-viz.sh writes the Node.js binding to
// ${CARGO_TARGET_DIR:-target}/viz-node/). No browser: the canvas calls are
// covered by e2e.mjs; here, every other export and its errors.
//
//   node wasm-viz/e2e/api.mjs [MODULE]
import { strict as assert } from 'node:assert';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const modulePath = resolve(process.argv[2] ||
  join(resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target'), 'viz-node/shen_wasm_viz.js'));
const { Viz, traceHash } = createRequire(import.meta.url)(modulePath);
let passed = 0;
const test = (name, f) => {
  f();
  passed++;
  console.log(`  ok   ${name}`);
};

test('bad input is a thrown Error with a message, never a trap', () => {
  assert.throws(() => new Viz('-1', 5), /seed must be an integer/);
  assert.throws(() => new Viz('1', 0), /nodes: must be between 1/);
  assert.throws(() => Viz.fromHash('seed=1&bogus=2'), /unknown key `bogus`/);
  assert.throws(() => Viz.fromHash('faults=1500:crash:1'), /whole milliseconds/);
  assert.throws(() => Viz.fromHash('nodes=3&faults=1000:crash:7'), /no node 7/);
  const v = new Viz('1', 3);
  assert.throws(() => v.advance(-5, 0), /non-negative/);
  assert.throws(() => v.advance(NaN, 0), /non-negative/);
  assert.throws(() => v.crash(9), /no node 9/);
  assert.throws(() => v.setLoss(2), /loss must be within/);
  assert.throws(() => v.setLatency(0), /latency must be within/);
  assert.throws(() => v.partition('a/b'), /node `a`/);
  assert.throws(() => v.dropMessage(1.5), /integer/);
  assert.throws(() => v.draw(), /no canvas attached/);
  assert.throws(() => traceHash('nodes = 0', 1n), /./);
  // Still usable after every error.
  v.advance(100, 0);
  assert.equal(v.timeMs(), 100);
  v.free();
});

test('actions are recorded in the script and the URL hash replays them', () => {
  const v = new Viz('5', 4);
  v.advance(500, 0);
  assert.match(v.crash(2), /^501000:crash:2$/);
  v.advance(200, 0);
  assert.equal(v.addNode(), 4);
  assert.equal(v.nodeCount(), 5);
  assert.match(v.partition('0.1/3'), /:part:0\.1\/3$/);
  v.advance(300, 0);
  assert.match(v.heal(), /:heal$/);
  v.advance(1000, 0);
  const hash = v.urlHash();
  assert.match(hash, /^seed=5&nodes=4&faults=.*crash:2.*add.*part.*heal.*&t=2000$/);
  const r = Viz.fromHash(hash);
  assert.equal(r.timeMs(), 2000);
  assert.equal(r.traceHash(), v.traceHash());
  assert.equal(r.script(), v.script());
  assert.throws(() => v.scenarioToml(), /cannot express/);
  v.free();
  r.free();
});

test('state JSON: nodes, views, ranges, token, invariants', () => {
  const v = new Viz('3', 5);
  v.advance(6000, 0);
  const s = JSON.parse(v.stateJson());
  assert.equal(s.nodes.length, 5);
  assert.equal(s.seed, '3');
  assert.match(s.trace_hash, /^[0-9a-f]{16}$/);
  for (const n of s.nodes) {
    assert.equal(n.up, true);
    assert.deepEqual(n.view.alive, [0, 1, 2, 3, 4]);
    assert.ok(n.phi.length > 0 && n.phi.every(([, p]) => p >= 0));
  }
  assert.deepEqual(s.ankh.members, [0, 1, 2, 3, 4]);
  const covered = s.ankh.ranges.reduce((a, r) => a + ((r.end - r.start + 1) % 1 || 1), 0);
  assert.ok(Math.abs(covered - 1) < 1e-9, `ranges cover the ring (${covered})`);
  assert.equal(s.ankh.chains.length, 64);
  assert.ok(s.token.holders.length <= 1);
  assert.deepEqual(s.invariants.map((i) => i.name), ['one_token_holder', 'views_converged', 'placements_agree']);
  assert.ok(s.invariants.every((i) => i.state === 'ok'));
  const sum = JSON.parse(v.summaryJson());
  assert.equal(sum.nodes[0].view, undefined);
  assert.equal(sum.ankh.ranges, undefined);
  v.free();
});

test('seek back and forward gives the same run', () => {
  const v = new Viz('9', 4);
  v.advance(1000, 0);
  v.crash(1);
  v.advance(2000, 0);
  const h = v.traceHash();
  v.seek(500);
  assert.equal(v.timeMs(), 500);
  assert.equal(v.horizonMs(), 3000);
  v.seek(3000);
  assert.equal(v.traceHash(), h);
  v.free();
});

test('request and drop the token', () => {
  const v = new Viz('4', 5);
  v.advance(1000, 0);
  assert.match(v.request(2), /:req:2$/);
  let dropped = null;
  for (let i = 0; i < 20000 && !dropped; i++) {
    try { dropped = v.dropToken(); } catch (e) { assert.match(e.message, /token/); v.step(); }
  }
  assert.match(dropped, /:drop:\d+$/);
  v.free();
});

test('log worlds: append, read, partitions, refusals', () => {
  assert.throws(() => Viz.fromHash('nodes=20&rings=sundial,cartouche,ouroboros'), /at most 16/);
  assert.throws(() => Viz.fromHash('rings=ouroboros'), /needs sundial and cartouche/);
  const plain = new Viz('1', 3);
  assert.equal(plain.hasLog(), false);
  assert.throws(() => plain.append(0, 'k'), /runs no log/);
  plain.free();
  const v = Viz.fromHash('seed=6&nodes=5&rings=sundial,cartouche,ouroboros');
  assert.equal(v.hasLog(), true);
  v.advance(2000, 0);
  assert.match(v.append(1, 'key1'), /^\d+:app:1\.key1$/);
  assert.throws(() => v.append(1, 'bad key'), /key `bad key`/);
  assert.throws(() => v.setLogPartition(8), /no log partition 8/);
  const p = v.partitionOfKey('key1');
  v.setLogPartition(p);
  v.advance(3000, 0);
  assert.match(v.read(2, p), /:read:2\./);
  v.advance(3000, 0);
  const s = JSON.parse(v.summaryJson());
  assert.deepEqual(s.log.ops.map((o) => o.outcome.state), ['acked', 'read']);
  assert.deepEqual(s.log.ops[1].outcome.records, [[0, 'key1#1']]);
  assert.match(v.logDebug(0, p), /chain/);
  const r = Viz.fromHash(v.urlHash());
  assert.equal(r.traceHash(), v.traceHash());
  v.free();
  r.free();
});

test('log worlds: a node joins, a member leaves, a dead one is removed', () => {
  const full = Viz.fromHash('seed=1&nodes=16&rings=sundial,cartouche,ouroboros');
  assert.throws(() => full.addNode(), /at most 16 nodes/);
  full.free();
  const v = Viz.fromHash('seed=6&nodes=4&rings=sundial,cartouche,ouroboros');
  v.advance(2000, 0);
  assert.equal(v.addNode(), 4);
  v.advance(8000, 0);
  let s = JSON.parse(v.summaryJson());
  assert.deepEqual(s.log.members.nodes, [0, 1, 2, 3, 4]);
  assert.ok(s.log.chains.some((c) => c.chain.includes(4)));
  assert.match(v.leave(1), /^\d+:leave:1$/);
  assert.throws(() => v.leave(1), /already leaving/);
  v.advance(15000, 0);
  s = JSON.parse(v.summaryJson());
  assert.deepEqual(s.log.gone, [1]);
  assert.deepEqual(s.log.members.nodes, [0, 2, 3, 4]);
  assert.ok(s.log.chains.every((c) => !c.chain.includes(1)));
  assert.throws(() => v.restart(1), /for good/);
  assert.throws(() => v.removeMember(1), /not a member/);
  v.crash(3);
  v.advance(1000, 0);
  assert.match(v.removeMember(3), /:remove:3$/);
  v.advance(15000, 0);
  s = JSON.parse(v.summaryJson());
  assert.deepEqual(s.log.members.nodes, [0, 2, 4]);
  const r = Viz.fromHash(v.urlHash());
  assert.equal(r.traceHash(), v.traceHash());
  v.free();
  r.free();
});

console.log(`api: ${passed} passed`);
