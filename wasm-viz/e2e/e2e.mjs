#!/usr/bin/env node
// End-to-end test of the browser simulator in real headless Chromium.
//
//   node wasm-viz/e2e/e2e.mjs      (after scripts/build-viz.sh and
//                                   cargo build -p shen-node --bin shen)
//
// 1. Load the page with one node, add five through the "Add node" button,
//    crash one by double-clicking it on the canvas, and check through the
//    JSON state hook that every other node declares it dead and that its
//    Ankh ranges moved to others.
// 2. Open `#seed=S&nodes=5&t=3000` and check the trace hash equals the
//    native `shen sim run --scenario scenarios/viz-default.toml --seed S`;
//    open a link with a fault script and check it equals the native run of
//    the scenario the page exports.
// 3. Save a screenshot under wasm-viz/e2e/artifacts/ and check it is not
//    blank; check the page's wasm + JS + HTML + CSS is <= 1.5 MB gzipped.
//
// Env: SHEN_BIN (default target/debug/shen), CHROMIUM (default
// /usr/bin/chromium). Exit 0 when every check passed, 1 otherwise.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, SHEN, WWW, launch, openPage, startServer } from './common.mjs';

const ARTIFACTS = join(ROOT, 'wasm-viz/e2e/artifacts');
let failures = 0;
const check = (ok, what) => {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
};

function nativeHash(scenarioFile, seed) {
  const out = execFileSync(SHEN, ['sim', 'run', '--scenario', scenarioFile, '--seed', String(seed), '--json'],
    { encoding: 'utf8', maxBuffer: 16 << 20 });
  return JSON.parse(out).trace_hash;
}

for (const f of [join(WWW, 'pkg/shen_wasm_viz_bg.wasm'), SHEN]) {
  if (!existsSync(f)) {
    console.error(`e2e: missing ${f} (run scripts/build-viz.sh and cargo build -p shen-node --bin shen)`);
    process.exit(1);
  }
}

const t0 = performance.now();
const server = await startServer();
let close = async () => {};
const errors = [];
try {
  const launched = await launch();
  const browser = launched.browser;
  close = launched.close;
  console.log(`e2e: ${server.url} in ${browser.version()}`);

  // ---- 1. add five nodes, crash one
  const page = await openPage(browser, server.url, 'seed=3&nodes=1', errors);
  await page.evaluate(() => window.shen.play(false));
  for (let i = 0; i < 5; i++) {
    await page.click('#add');
    await page.evaluate(() => window.shen.viz.advance(300, 0));
  }
  await page.evaluate(() => window.shen.viz.advance(8000, 0));
  let s = await page.evaluate(() => window.shen.state());
  check(s.nodes.length === 6 && s.nodes.every((n) => n.up), `six running nodes (${s.nodes.length})`);
  check(s.invariants.find((i) => i.name === 'views_converged').state === 'ok', 'their views converged');
  const victim = 3;
  const before = s.ankh.ranges.filter((r) => r.owner === victim).length;
  check(before > 0, `node ${victim} owns ${before} ranges`);
  const [x, y] = await page.evaluate((id) => window.shen.viz.nodePos(id), victim);
  const box = await page.locator('#canvas').boundingBox();
  await page.mouse.dblclick(box.x + x, box.y + y);
  s = await page.evaluate(() => window.shen.state());
  check(s.script.includes(`:crash:${victim}`), `double-click crashed node ${victim} (script ${s.script})`);
  await page.evaluate(() => window.shen.viz.advance(10000, 0));
  s = await page.evaluate(() => window.shen.state());
  const others = s.nodes.filter((n) => n.id !== victim);
  check(!s.nodes[victim].up, `node ${victim} is down`);
  check(others.every((n) => n.up && n.view.dead.includes(victim)),
    `every other node marks ${victim} dead (${others.map((n) => JSON.stringify(n.view.dead)).join(' ')})`);
  check(s.nodes[victim].declared_dead, 'its node record says declared_dead');
  const after = s.ankh.ranges.filter((r) => r.owner === victim).length;
  check(after === 0 && s.ankh.ranges.length > 0 && !s.ankh.members.includes(victim),
    `its ranges moved (${before} -> ${after}; members ${JSON.stringify(s.ankh.members)})`);
  check(s.invariants.every((i) => i.state !== 'violated'), 'no invariant violated');

  // ---- 3. screenshot, not blank (after a few frames refresh the panels)
  await page.evaluate(() => window.shen.viz.select(4));
  await page.mouse.click(box.x + (await page.evaluate(() => window.shen.viz.nodePos(4)))[0],
    box.y + (await page.evaluate(() => window.shen.viz.nodePos(4)))[1]);
  await page.waitForTimeout(500);
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = join(ARTIFACTS, 'viz.png');
  await page.screenshot({ path: shot });
  const colours = await page.evaluate(() => {
    const c = document.getElementById('canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  });
  const bytes = statSync(shot).size;
  check(colours > 20 && bytes > 20_000, `screenshot ${shot}: ${bytes} bytes, ${colours} colours on the canvas`);
  await page.close();

  // ---- the UI: a lesson notices the learner's action, the URL follows
  // actions, the timeline scrubs back
  {
    const p = await openPage(browser, server.url, 'seed=2&nodes=6', errors);
    await p.evaluate(() => { window.shen.play(false); window.shen.viz.advance(3000, 0); });
    await p.click('#lessonpick button[data-lesson="sundial"]');
    check(await p.locator('#lessonnext').isDisabled(), 'lesson: Next waits for the learner');
    await p.click('#part');
    await p.evaluate(() => window.shen.viz.advance(4000, 0));
    await p.waitForSelector('#lessontext .done', { timeout: 10_000 }).catch(() => {});
    check(await p.locator('#lessontext .done').count() === 1 && !(await p.locator('#lessonnext').isDisabled()),
      'lesson: "make the cluster suspect a healthy node" is detected after a partition');
    const hash = await p.evaluate(() => location.hash);
    check(/faults=\d+:part:/.test(hash), `the URL carries the fault script (${hash})`);
    await p.evaluate(() => {
      const r = document.getElementById('scrub');
      r.value = '1000';
      r.dispatchEvent(new Event('input'));
    });
    const t = await p.evaluate(() => window.shen.viz.timeMs());
    const s2 = await p.evaluate(() => window.shen.summary());
    check(t === 1000 && s2.horizon_us >= 7000000, `scrubbing back to 1 s (now ${t} ms, timeline end ${s2.horizon_us / 1000} ms)`);
    await p.close();
  }

  // ---- 2. a seed in the URL replays the native run
  for (const seed of [7, 12345]) {
    const p = await openPage(browser, server.url, `seed=${seed}&nodes=5&t=3000`, errors);
    const h = await p.evaluate(() => { window.shen.play(false); window.shen.viz.seek(3000); return window.shen.viz.traceHash(); });
    const n = nativeHash(join(ROOT, 'scenarios/viz-default.toml'), seed);
    check(h === n, `#seed=${seed}&t=3000: page ${h}, shen sim run ${n}`);
    await p.close();
  }
  const faults = '1000000:crash:2,1500000:part:0.1/3.4,2200000:heal,2300000:loss:0.1,2600000:restart:2';
  const p = await openPage(browser, server.url, `seed=99&nodes=5&faults=${faults}&t=4000`, errors);
  const [h, toml] = await p.evaluate(() => {
    window.shen.play(false);
    window.shen.viz.seek(4000);
    return [window.shen.viz.traceHash(), window.shen.viz.scenarioToml()];
  });
  const file = join(tmpdir(), `shen-viz-e2e-${process.pid}.toml`);
  writeFileSync(file, toml);
  const n = nativeHash(file, 99);
  check(h === n, `faults link: page ${h}, shen sim run of its scenario ${n}`);
  check(toml.includes('crash = 2') && toml.includes('heal'), 'the exported scenario holds the faults');
  await p.close();

  // ---- size budget
  let gz = 0;
  for (const f of ['pkg/shen_wasm_viz_bg.wasm', 'pkg/shen_wasm_viz.js', 'app.js', 'index.html', 'style.css']) {
    gz += gzipSync(readFileSync(join(WWW, f)), { level: 9 }).length;
  }
  check(gz <= 1.5 * 1024 * 1024, `page wasm + JS + HTML + CSS: ${(gz / 1024).toFixed(0)} KiB gzipped (<= 1536 KiB)`);
  check(errors.length === 0, `no page errors${errors.length ? ': ' + errors.join('; ') : ''}`);
} catch (e) {
  console.log(`  FAIL ${e.stack || e}`);
  failures++;
} finally {
  await close();
  server.stop();
}
console.log(`e2e: ${failures === 0 ? 'passed' : `${failures} check(s) failed`} (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
process.exit(failures === 0 ? 0 : 1);
