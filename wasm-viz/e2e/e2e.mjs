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
// 4. The Shen log: a log world, appends and reads from the panel, a crashed
//    chain head, the log invariants, a log world's link replayed natively.
// 6. The teaching view: nodes never overlap (5, 12, 60, 500 nodes), each
//    drawn in its own colour, the canvas fills its box and is sharp on a
//    HiDPI screen; a message hovered and clicked is explained; ring and
//    kind filters; the keys (space, arrows, ?). Saves teach-60.png.
// 7. The space-time diagram: drawn, an arrow hovered and clicked, dragged
//    to scrub; pause / clock skew / power loss from the node panel replay
//    natively; a run exported as a file and imported (same trace hash),
//    tampered files refused. Saves spacetime.png.
// 8. Ankh keys: a join moves about 1/N of the sample keys, all to the new
//    node, counted in the panel; a clicked key shows its replica walk.
//    Saves keys.png.
// 9. Delivery-choice mode: three choices, the link replays to the same
//    trace hash, a different choice after a rewind is a second branch of
//    the tree, and clicking the first branch returns to it. Saves choice.png.
// 11. Side by side (sidebyside.mjs): fanout 1 vs 4 in lockstep, a crash
//    double-clicked in world A lands in both; the figures that must differ
//    do; each world's own link, the shared link and world A's scenario
//    (natively) replay to the same trace hashes; vnodes 1 vs 160: the same
//    run, different keys moved; a bad pair is a message. Saves
//    sidebyside.png.
// 12. From a failing seed to the picture (seedlink.mjs): a scenario made in
//    the page with an expectation that fails; `shen sim run` prints a page
//    link; it opens the page at the first invariant violation with the
//    trace hash the line names, and the run ends with the native hash.
// 13. Causality (causes.mjs): in a log world a crashed chain head; the
//    line where another node installs the new table, clicked in the event
//    log, lists its causes back to the crash across rings, marks them and
//    draws them on the space-time diagram; the trace hash is unchanged.
// 14. An elastic log (elastic.mjs): "Add node" in a log world, the new
//    node joins the member set and some chains; "Leave the log" takes a
//    member out and stops it; no acknowledged append lost; the link replays.
// 10. Lessons (lessons.mjs): every lesson of every ring driven to its end
//    through the page (actions by mouse and buttons, every prediction
//    answered, what the protocols must answer checked), the canvas
//    highlight, every ring's challenge refereed, every step opened from a
//    link, teacher links to mid-lesson steps.
// 5. Live mode against a fake admin API served by this script on 127.0.0.1
//    (/status JSON + /events SSE, with CORS like `shen run`'s): members
//    drawn, events flash, fork into a simulation; an unreachable address
//    and a malformed one give a message, not a crash.
//
// (No real cluster is started.)
//
// Env: SHEN_BIN (default target/debug/shen), CHROMIUM (default
// /usr/bin/chromium). Exit 0 when every check passed, 1 otherwise.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, SHEN, WWW, launch, openPage, startServer } from './common.mjs';
import { lessonsE2E } from './lessons.mjs';
import { sideBySideE2E } from './sidebyside.mjs';
import { seedLinkE2E } from './seedlink.mjs';
import { elasticE2E } from './elastic.mjs';
import { causesE2E } from './causes.mjs';

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

// A fake `shen run` admin API on 127.0.0.1: /status (4 members, one
// suspect, one dead, a log of 8 partitions) and /events (an SSE stream of
// suspicions), with CORS for loopback origins as `shen run` sends it.
function fakeAdmin() {
  const ids = ['12D3KooWSelfSelfSelfSelfSelf0001', 'peer-b', 'peer-c', 'peer-d'];
  const status = {
    schema: 1, peer_id: ids[0], health: 'degraded', live_members: 3,
    members: [
      { id: ids[0], self: true, status: 'alive', incarnation: 1, suspectors: 0, phi: null, ownership: 0.3 },
      { id: ids[1], self: false, status: 'alive', incarnation: 1, suspectors: 0, phi: 1.2, ownership: 0.3 },
      { id: ids[2], self: false, status: 'suspect', incarnation: 2, suspectors: 1, phi: 9.1, ownership: 0.4 },
      { id: ids[3], self: false, status: 'dead', incarnation: 1, suspectors: 2, phi: null, ownership: null },
    ],
    log: {
      formed: true, partitions: 8, rf: 3, table_ballot: '2.1',
      chains: Array.from({ length: 8 }, (_, p) => ({
        partition: p, epoch: '2.1', members: [ids[p % 3], ids[(p + 1) % 3], ids[(p + 2) % 3]],
        here: true, local_len: p, committed: p,
      })),
    },
  };
  const served = { status: 0, events: 0 };
  const streams = new Set();
  const srv = createServer((req, res) => {
    const origin = req.headers.origin || '';
    const cors = /^http:\/\/(127\.0\.0\.1|localhost):\d+$/.test(origin) ? { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' } : {};
    if (req.url === '/status') {
      served.status++;
      res.writeHead(200, { 'Content-Type': 'application/json', ...cors });
      res.end(JSON.stringify(status));
    } else if (req.url === '/events') {
      served.events++;
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', ...cors });
      res.write(': shen ring events\n\n');
      let n = 0;
      const timer = setInterval(() => {
        n++;
        const ev = { time_ms: 1000 * n, name: 'sundial.suspected', event: { Sundial: { Suspected: { member: ids[2], by: ids[1] } } } };
        res.write(`data: ${JSON.stringify(ev)}\n\n`);
      }, 150);
      streams.add(res);
      req.on('close', () => { clearInterval(timer); streams.delete(res); });
    } else {
      res.writeHead(404, cors);
      res.end('not found\n');
    }
  });
  return new Promise((ok) => srv.listen(0, '127.0.0.1', () => ok({
    port: srv.address().port,
    served,
    stop: () => { for (const s of streams) s.destroy(); srv.close(); },
  })));
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
    await p.click('#lessonnext');
    await p.click('#lessonnext');
    check(await p.evaluate(() => window.shen.lesson.ix) === 2 && await p.locator('#lessonnext').isDisabled(),
      'lesson: Next waits for the learner (sundial step 3: click a node)');
    const [nx, ny] = await p.evaluate(() => window.shen.viz.nodePos(1));
    const nb = await p.locator('#canvas').boundingBox();
    await p.mouse.click(nb.x + 1 + nx, nb.y + 1 + ny);
    await p.waitForSelector('#lessontext .done', { timeout: 10_000 }).catch(() => {});
    check(await p.locator('#lessontext .done').count() === 1 && !(await p.locator('#lessonnext').isDisabled()),
      'lesson: the click on a node is noticed');
    await p.click('#part');
    await p.evaluate(() => window.shen.viz.advance(4000, 0));
    const hash = await p.evaluate(() => location.hash);
    check(/faults=\d+:part:/.test(hash) && /&lesson=sundial&step=3$/.test(hash), `the URL carries the fault script and the lesson step (${hash})`);
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

  // ---- 11. side by side
  await sideBySideE2E(browser, server.url, errors, check, nativeHash);

  // ---- 12. a failing `shen sim run` seed's page link
  await seedLinkE2E(browser, server.url, errors, check);

  // ---- 13. causality across rings in the event log
  await causesE2E(browser, server.url, errors, check);

  // ---- 14. an elastic log: add a node, a member leaves
  await elasticE2E(browser, server.url, errors, check);

  // ---- 10. the lessons: every lesson to its end, challenges, step links
  await lessonsE2E(browser, server.url, errors, check);

  // ---- the Shen log: a log world, appends and a read through the panel,
  // a crash of a chain's head, the two log invariants
  {
    const p = await openPage(browser, server.url, 'seed=4&nodes=5&rings=sundial,cartouche,ouroboros', errors);
    await p.evaluate(() => { window.shen.play(false); window.shen.viz.advance(2000, 0); });
    check(await p.locator('#logui').isVisible() && !(await p.locator('#lognone').isVisible()), 'log world: the log panel is shown');
    await p.fill('#logkey', 'e2e');
    await p.click('#logappend');
    await p.click('#logburst');
    let s = await p.evaluate(() => window.shen.summary());
    check(s.log.pending === 6 && s.log.ops.length === 6, `six appends in flight (${s.log.pending})`);
    await p.evaluate(() => window.shen.viz.advance(50, 0));
    s = await p.evaluate(() => window.shen.state());
    const kinds = [...new Set(s.messages.filter((m) => m.ring === 'ouroboros').map((m) => m.kind))];
    check(kinds.some((k) => ['append', 'client_append', 'ack'].includes(k)),
      `chain messages in flight, by kind (${kinds.join(', ')})`);
    await p.evaluate(() => window.shen.viz.advance(3000, 0));
    s = await p.evaluate(() => window.shen.state());
    const part = s.log.ops[0].partition;
    check(s.log.acked === 6 && s.log.ops.every((o) => o.outcome.state === 'acked'),
      `every append acknowledged (${s.log.ops.map((o) => o.outcome.state).join(',')})`);
    check(await p.evaluate(() => window.shen.viz.logPartition()) === part, `the panel follows the key's partition (${part})`);
    const chain = s.log.chains[part].chain;
    check(chain.length === 3 && s.log.chains[part].replicas.filter((r) => r.member).every((r) => r.commit >= 1),
      `partition ${part}: chain ${JSON.stringify(chain)}, every member committed the record`);
    const names = s.invariants.map((i) => i.name);
    check(names.includes('chain_prefix_order') && names.includes('no_lost_ack') &&
      s.invariants.every((i) => i.state === 'ok'), `log invariants hold (${names.join(', ')})`);
    // Crash the head through the canvas, wait for the reconfiguration,
    // then read the partition at its (new) tail.
    const [hx, hy] = await p.evaluate((id) => window.shen.viz.nodePos(id), chain[0]);
    const cb = await p.locator('#canvas').boundingBox();
    await p.mouse.dblclick(cb.x + hx, cb.y + hy);
    await p.evaluate(() => window.shen.viz.advance(15000, 0));
    await p.click('#logread');
    await p.evaluate(() => window.shen.viz.advance(3000, 0));
    s = await p.evaluate(() => window.shen.state());
    const newChain = s.log.chains[part].chain;
    const read = s.log.ops.find((o) => o.kind === 'read');
    check(!newChain.includes(chain[0]) && newChain.length === 3, `new chain without the crashed head: ${JSON.stringify(newChain)}`);
    check(read && read.outcome.state === 'read' && read.outcome.records.some(([, d]) => d === 'e2e#1'),
      `read at the tail returns the acknowledged record (${JSON.stringify(read && read.outcome)})`);
    check(s.invariants.every((i) => i.state === 'ok' && i.first_violation_us == null), 'no invariant violated after the crash');
    await p.waitForTimeout(300);
    const opsText = await p.locator('#logops').innerText();
    check(/acknowledged at offset 0/.test(opsText) && /read partition/.test(opsText), 'the operations list shows outcomes');
    mkdirSync(ARTIFACTS, { recursive: true });
    await p.screenshot({ path: join(ARTIFACTS, 'viz-log.png') });
    // The chain is drawn: cyan arrow pixels on the canvas.
    const cyan = await p.evaluate(() => {
      const c = document.getElementById('canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] === 0x26 && d[i + 1] === 0xc6 && d[i + 2] === 0xda) n++;
      return n;
    });
    check(cyan > 200, `the chain is drawn (${cyan} cyan pixels)`);
    // Faults only: the exported scenario (with [stack.ouroboros]) replays
    // natively to the same trace hash.
    await p.evaluate(() => {
      location.hash = 'seed=8&nodes=4&rings=sundial,cartouche,ouroboros&faults=1000000:crash:1,2500000:restart:1&t=4000';
    });
    await p.waitForFunction(() => window.shen.viz.script().includes('restart'), null, { timeout: 10_000 });
    const [h, toml] = await p.evaluate(() => {
      window.shen.play(false);
      window.shen.viz.seek(4000);
      return [window.shen.viz.traceHash(), window.shen.viz.scenarioToml()];
    });
    const f = join(tmpdir(), `shen-viz-e2e-log-${process.pid}.toml`);
    writeFileSync(f, toml);
    const nh = nativeHash(f, 8);
    check(toml.includes('[stack.ouroboros]') && h === nh, `log world faults link: page ${h}, shen sim run ${nh}`);
    await p.close();
  }
  // ---- bad links: a clear message, never a panic
  {
    const p = await openPage(browser, server.url, 'nodes=40&rings=sundial,cartouche,ouroboros', errors);
    const msg = await p.locator('#error').innerText();
    check(/at most 16/.test(msg) && await p.evaluate(() => window.shen.viz.nodeCount()) === 5,
      `a log world of 40 nodes is refused with a message (${msg})`);
    errors.splice(0, errors.length, ...errors.filter((e) => !/at most 16/.test(e)));
    await p.close();
  }

  // ---- 6. the teaching view
  {
    // A message of `ring` in flight, drawn clear of every node and of
    // other messages, arriving not too soon.
    const pickMessage = (ring) => {
      const v = window.shen.viz;
      const foot = v.nodeFootprint();
      const nodes = [];
      for (let i = 0; i < v.nodeCount(); i++) nodes.push(v.nodePos(i));
      // Step a few ms at a time until one is clear (time only moves on).
      for (let tries = 0; tries < 50; tries++, v.advance(3, 0)) {
        const now = v.timeMs() * 1000;
        const all = window.shen.state().messages;
        const pos = new Map(all.map((x) => [x.id, v.messagePos(x.id)]));
        const clear = (x) => {
          const [mx, my] = pos.get(x.id);
          return nodes.every(([nx, ny]) => Math.hypot(nx - mx, ny - my) > foot + 8) &&
            all.every((y) => y.id === x.id || Math.hypot(pos.get(y.id)[0] - mx, pos.get(y.id)[1] - my) > 4);
        };
        const ok = all.filter((x) => x.arrives_us > now + 5000 && clear(x));
        const m = ok.find((x) => x.ring === ring) || ok[0];
        if (m) return m;
      }
      return null;
    };
    // No overlap, at every size: centres at least two footprints apart.
    for (const n of [5, 12, 60, 500]) {
      const p = await openPage(browser, server.url, `seed=5&nodes=${n}`, errors);
      const r = await p.evaluate(() => {
        window.shen.play(false);
        const v = window.shen.viz;
        const pts = [];
        for (let i = 0; i < v.nodeCount(); i++) pts.push(v.nodePos(i));
        let min = Infinity;
        for (let i = 0; i < pts.length; i++) {
          for (let j = i + 1; j < pts.length; j++) {
            min = Math.min(min, Math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]));
          }
        }
        const c = document.getElementById('canvas');
        return { min, foot: v.nodeFootprint(), n: pts.length, cw: c.clientWidth, ch: c.clientHeight };
      });
      check(r.n === n && r.foot > 0.5 && r.min >= 2 * r.foot,
        `${n} nodes: closest centres ${r.min.toFixed(1)} px apart, drawings ${(2 * r.foot).toFixed(1)} px wide`);
      if (n === 5) {
        check(r.cw > 760 && r.ch >= 480, `the canvas fills its box (${r.cw}x${r.ch} CSS px)`);
      }
      if (n === 60) {
        await p.evaluate(() => { window.shen.viz.advance(3000, 0); window.shen.viz.crash(7); window.shen.viz.advance(1200, 0); });
        await p.waitForTimeout(300);
        const m = await p.evaluate(pickMessage, 'sundial');
        if (m) {
          const [mx, my] = await p.evaluate((id) => window.shen.viz.messagePos(id), m.id);
          const cb = await p.locator('#canvas').boundingBox();
          await p.mouse.move(cb.x + 1 + mx, cb.y + 1 + my);
          await p.waitForTimeout(100);
        }
        mkdirSync(ARTIFACTS, { recursive: true });
        await p.screenshot({ path: join(ARTIFACTS, 'teach-60.png') });
      }
      await p.close();
    }

    // HiDPI: the backing store is twice the CSS size, and a node's centre
    // pixel is its palette colour.
    {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 2 });
      const p = await ctx.newPage();
      p.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
      await p.goto(`${server.url}#seed=3&nodes=8`);
      await p.waitForFunction(() => window.shen && window.shen.ready, null, { timeout: 30_000 });
      await p.waitForTimeout(300);
      const r = await p.evaluate(() => {
        window.shen.play(false);
        window.shen.viz.draw();
        const c = document.getElementById('canvas');
        const [x, y] = window.shen.viz.nodePos(2);
        const d = c.getContext('2d').getImageData(Math.round(x * 2), Math.round(y * 2), 1, 1).data;
        return { bw: c.width, cw: c.clientWidth, px: [d[0], d[1], d[2]] };
      });
      // Node 2's colour: Okabe-Ito bluish green #009e73.
      check(r.bw === 2 * r.cw, `HiDPI: backing store ${r.bw} px for ${r.cw} CSS px`);
      check(r.px[0] === 0x00 && r.px[1] === 0x9e && r.px[2] === 0x73, `node 2 drawn in its colour (${r.px})`);
      await ctx.close();
    }

    // Inspect a message: hover shows it, a click keeps it.
    const p = await openPage(browser, server.url, 'seed=6&nodes=6', errors);
    const hash0 = await p.evaluate(() => { window.shen.play(false); window.shen.viz.seek(2000); return window.shen.viz.traceHash(); });
    const kinds = await p.evaluate(() => JSON.parse(window.shen.viz.constructor.messageKinds()));
    const rings = new Set(kinds.map((k) => k.ring));
    check(['sundial', 'cartouche', 'ouroboros'].every((r) => rings.has(r)) &&
      kinds.every((k) => k.why.length > 20), `every kind of every ring explained (${kinds.length} kinds)`);
    const m = await p.evaluate(pickMessage, 'sundial');
    check(!!m && m.what && m.what !== '?', `a message in flight has a kind (${m && `${m.ring}.${m.what}`})`);
    const cb = await p.locator('#canvas').boundingBox();
    const [mx, my] = await p.evaluate((id) => window.shen.viz.messagePos(id), m.id);
    const hit = await p.evaluate(([x, y]) => window.shen.viz.messageAt(x, y, 6), [mx, my]);
    const [hx, hy] = await p.evaluate((id) => window.shen.viz.messagePos(id), hit);
    await p.mouse.move(cb.x + 1 + mx, cb.y + 1 + my);
    await p.waitForTimeout(100);
    const tip = await p.locator('#tip').innerText().catch(() => '');
    check(hit >= 0 && Math.hypot(hx - mx, hy - my) <= 6 && await p.locator('#tip').isVisible() && /node \d+ → node \d+/.test(tip) && /sent [\d.]+ ms/.test(tip),
      `hover shows the message (${tip.replaceAll('\n', ' | ')})`);
    await p.mouse.click(cb.x + 1 + mx, cb.y + 1 + my);
    const ins = await p.evaluate(() => window.shen.inspected);
    const info = await p.locator('#msginfo').innerText();
    check(ins && ins.id === hit && ins.why.length > 20 && ins.fields.length > 0 && info.includes(ins.why) && info.includes(`${ins.ring} · ${ins.kind}`),
      `click keeps it in the Message panel (${ins && `${ins.ring}.${ins.kind}: ${ins.why}`})`);
    // Filters: hide the ring, the message is no longer drawn nor hit.
    await p.click('#filters summary');
    await p.locator(`#filterlist input[data-ring="${m.ring}"]`).uncheck();
    check(await p.evaluate(([x, y]) => window.shen.viz.messageAt(x, y, 0.5), [hx, hy]) < 0 ||
      (await p.evaluate((id) => JSON.parse(window.shen.viz.messageJson(id)).ring, await p.evaluate(([x, y]) => window.shen.viz.messageAt(x, y, 0.5), [hx, hy]))) !== m.ring,
      `unticking ${m.ring} hides its messages`);
    await p.locator(`#filterlist input[data-ring="${m.ring}"]`).check();
    await p.locator(`#filterlist input[data-kind="${m.ring}.${m.what}"]`).uncheck();
    const after = await p.evaluate(() => window.shen.viz.messageAt(...window.shen.viz.messagePos(window.shen.inspected.id), 0.5));
    check(after < 0 || JSON.parse(await p.evaluate((id) => window.shen.viz.messageJson(id), after)).kind !== m.what,
      `unticking ${m.ring}.${m.what} hides that kind`);
    await p.locator(`#filterlist input[data-kind="${m.ring}.${m.what}"]`).check();
    // Keys.
    await p.locator('#canvas').focus();
    const t0 = await p.evaluate(() => window.shen.viz.timeMs());
    await p.keyboard.press('ArrowRight');
    const t1 = await p.evaluate(() => window.shen.viz.timeMs());
    await p.keyboard.press('Shift+ArrowRight');
    const t2 = await p.evaluate(() => window.shen.viz.timeMs());
    await p.keyboard.press('ArrowLeft');
    const t3 = await p.evaluate(() => window.shen.viz.timeMs());
    check(t1 > t0 && Math.abs(t2 - t1 - 100) < 1e-6 && Math.abs(t2 - t3 - 100) < 1e-6,
      `→ steps (${t0} → ${t1}), shift → +100 ms (${t2}), ← −100 ms (${t3})`);
    await p.keyboard.press('Space');
    check(await p.locator('#play').innerText() === 'Pause', 'space plays');
    await p.keyboard.press('Space');
    check(await p.locator('#play').innerText() === 'Play', 'space pauses');
    await p.keyboard.press('?');
    check(await p.locator('#keys').isVisible() && /play \/ pause/.test(await p.locator('#keys').innerText()), '? shows the keys');
    await p.keyboard.press('?');
    check(!(await p.locator('#keys').isVisible()), '? hides them');
    // Presentation only: the run is the same run.
    const hash1 = await p.evaluate(() => { window.shen.viz.seek(2000); return window.shen.viz.traceHash(); });
    check(hash1 === hash0, `inspecting, filtering and keys change nothing in the run (${hash0} = ${hash1})`);
    // Narration: a crash told in plain words; a line jumps the timeline.
    await p.evaluate(() => { window.shen.viz.crash(2); window.shen.viz.advance(8000, 0); });
    await p.waitForTimeout(400);
    const dead = p.locator('#narr li', { hasText: 'declares node 2 dead' });
    const nDead = await dead.count();
    const narr = await p.locator('#narr').innerText();
    check(nDead > 0 && /suspects node 2: phi \d+\.\d \(threshold \d+\)/.test(narr),
      `the event log tells the crash (${nDead} "declares node 2 dead" lines; ${narr.split('\n').find((l) => /suspects node 2/.test(l))})`);
    const first = dead.last();
    const at = Number(await first.getAttribute('data-at'));
    await first.click();
    const tNow = await p.evaluate(() => window.shen.viz.timeMs());
    await p.waitForTimeout(300);
    check(at > 2000000 && tNow === at / 1000 && await p.locator('#narr li', { hasText: 'declares node 2 dead' }).count() === nDead,
      `clicking a line jumps to its instant (${at / 1000} ms, now ${tNow} ms), the log keeps its lines`);
    check(await p.locator('#narr li.future').count() > 0, 'lines after now are greyed');
    await p.close();
  }

  // ---- 7. the space-time diagram, page faults, run files
  {
    const p = await openPage(browser, server.url, 'seed=6&nodes=6', errors);
    await p.evaluate(() => { window.shen.play(false); window.shen.viz.advance(1500, 0); window.shen.viz.crash(2); window.shen.viz.advance(700, 0); });
    const info = await p.evaluate(() => {
      const v = window.shen.viz;
      const shapes = v.drawSpacetime();
      const c = document.getElementById('spacetime');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      let red = 0;
      for (let i = 0; i < d.length; i += 4) {
        seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        if (d[i] === 0xe5 && d[i + 1] === 0x39 && d[i + 2] === 0x35) red++;
      }
      return { on: v.spacetimeOn(), shapes, colours: seen.size, red, w: c.clientWidth, h: c.clientHeight };
    });
    check(info.on && info.shapes > 200 && info.colours > 10 && info.red > 0,
      `space-time diagram drawn below the ring (${info.w}x${info.h} px, ${info.shapes} shapes, ${info.colours} colours, crash/drop marks in red)`);
    // A message in flight now, delivered 200 ms later: its arrow is hit
    // at its middle, hovered and clicked.
    const id = await p.evaluate(() => {
      const now = window.shen.viz.timeMs() * 1000;
      const m = window.shen.state().messages.find((x) => x.arrives_us && x.arrives_us < now + 100000 && x.to !== 2);
      window.shen.viz.advance(200, 0);
      window.shen.viz.drawSpacetime();
      return m ? m.id : -1;
    });
    const rec = JSON.parse(await p.evaluate((i) => window.shen.viz.spacetimeMessageJson(i), id));
    check(rec && rec.fate.state === 'delivered' && rec.end_us > rec.sent_us && rec.kind !== '?' && rec.why.length > 20,
      `its arrow records the delivery (${rec && `${rec.ring}.${rec.kind} ${rec.from}→${rec.to}, ${(rec.end_us - rec.sent_us) / 1000} ms`})`);
    const [ax, ay] = await p.evaluate((i) => window.shen.viz.spacetimeArrowPos(i), id);
    const hit = await p.evaluate(([x, y]) => window.shen.viz.spacetimeArrowAt(x, y, 4), [ax, ay]);
    const sb = await p.locator('#spacetime').boundingBox();
    await p.mouse.move(sb.x + 1 + ax, sb.y + 1 + ay);
    await p.waitForTimeout(100);
    const tip = await p.locator('#sttip').innerText().catch(() => '');
    check(hit >= 0 && await p.locator('#sttip').isVisible() && /node \d+ → node \d+/.test(tip),
      `hovering an arrow explains it (${tip.replaceAll('\n', ' | ')})`);
    const tBefore = await p.evaluate(() => window.shen.viz.timeMs());
    await p.mouse.down();
    await p.mouse.up();
    const ins = await p.evaluate(() => window.shen.inspected);
    const msg = await p.locator('#msginfo').innerText();
    check(ins && ins.id === hit && msg.includes(`${ins.ring} · ${ins.kind}`) && /delivered|dropped|arrives|in flight/.test(msg),
      `clicking an arrow inspects it in the Message panel (${msg.replaceAll('\n', ' | ')})`);
    check(await p.evaluate(() => window.shen.viz.timeMs()) === tBefore, 'a click on an arrow does not move time');
    // Drag to scrub: 150 px to the left goes back in time.
    const hashEnd = await p.evaluate(() => window.shen.viz.traceHash());
    // The now line jumps under the mouse, then follows it.
    const tDown = await p.evaluate((x) => window.shen.viz.spacetimeTimeAt(x), sb.width * 0.7 - 1);
    await p.mouse.move(sb.x + sb.width * 0.7, sb.y + sb.height - 6);
    await p.mouse.down();
    for (let k = 1; k <= 5; k++) await p.mouse.move(sb.x + sb.width * 0.7 - 30 * k, sb.y + sb.height - 6);
    await p.mouse.up();
    const tDrag = await p.evaluate(() => window.shen.viz.timeMs());
    const win = await p.evaluate(() => window.shen.viz.spacetimeWindow());
    const expect = tDown - 150 * (win[1] - win[0]) / (sb.width - 2 - 52);
    check(tDrag < tBefore && Math.abs(tDrag - expect) < 2,
      `dragging the diagram scrubs (${tBefore} → ${tDrag.toFixed(1)} ms, expected ${expect.toFixed(1)})`);
    const hashBack = await p.evaluate((t) => { window.shen.viz.seek(t); return window.shen.viz.traceHash(); }, tBefore);
    check(hashBack === hashEnd, `scrubbing on the diagram keeps the run (${hashEnd} = ${hashBack})`);
    // Page faults from the node panel: pause, clock skew, power loss.
    const cb = await p.locator('#canvas').boundingBox();
    const [nx, ny] = await p.evaluate(() => window.shen.viz.nodePos(4));
    await p.mouse.click(cb.x + 1 + nx, cb.y + 1 + ny);
    await p.locator('#nodeinfo button', { hasText: 'Pause 1 s' }).click();
    await p.evaluate(() => window.shen.viz.advance(300, 0));
    await p.locator('#nodeinfo button', { hasText: 'Clock −500 ms' }).click();
    await p.evaluate(() => window.shen.viz.advance(300, 0));
    await p.locator('#nodeinfo button', { hasText: 'Power loss' }).click();
    await p.evaluate(() => window.shen.viz.advance(1500, 0));
    const script = await p.evaluate(() => window.shen.viz.script());
    check(/:pause:4\.1000/.test(script) && /:skew:4\.-500/.test(script) && /:power:4/.test(script),
      `pause, clock skew and power loss from the node panel (${script})`);
    // On a whole millisecond (a scenario lasts whole ms), then the page's
    // trace and the scenario it exports.
    const [hf, tomlf, tf] = await p.evaluate(() => {
      window.shen.viz.seek(Math.ceil(window.shen.viz.timeMs()));
      return [window.shen.viz.traceHash(), window.shen.viz.scenarioToml(), window.shen.viz.timeMs()];
    });
    const ff = join(tmpdir(), `shen-viz-e2e-faults-${process.pid}.toml`);
    writeFileSync(ff, tomlf);
    const nf = nativeHash(ff, 6);
    check(hf === nf && /lose_unsynced/.test(tomlf), `those faults replay natively: page ${hf} at ${tf} ms, shen sim run ${nf}`);
    // The diagram of the whole story, for the README.
    await p.evaluate(() => { window.shen.viz.seek(window.shen.viz.timeMs() - 1700); });
    await p.selectOption('#stspan', '5000');
    await p.evaluate(() => { window.shen.viz.drawSpacetime(); });
    await p.waitForTimeout(200);
    await p.locator('#stwrap').screenshot({ path: join(ROOT, 'wasm-viz/e2e/spacetime.png') });
    await p.screenshot({ path: join(ARTIFACTS, 'viz-spacetime-page.png') });
    // Run files: export, import elsewhere, same trace hash; a tampered
    // file is refused with the reason.
    // (At the end of the history, on a whole millisecond: a scenario
    // holds every fault and lasts whole ms.)
    const text = await p.evaluate(() => { window.shen.viz.seek(Math.ceil(window.shen.viz.horizonMs())); return window.shen.exportRun(); });
    const run = JSON.parse(text);
    const rf = join(tmpdir(), `shen-viz-e2e-run-${process.pid}.toml`);
    writeFileSync(rf, run.scenario_toml || '');
    check(run.format === 'shen-viz-run' && run.trace_hash === await p.evaluate(() => window.shen.viz.traceHash()) &&
      run.scenario_toml && nativeHash(rf, 6) === run.trace_hash,
      `export: a run file (${run.actions.split(',').length} actions, t ${run.t_ms} ms, trace ${run.trace_hash}, its scenario replays natively)`);
    await p.close();
    const q = await openPage(browser, server.url, 'seed=1&nodes=3', errors);
    const verdict = await q.evaluate((t) => window.shen.importRun(t), text);
    const qh = await q.evaluate(() => [window.shen.viz.traceHash(), window.shen.viz.nodeCount(), location.hash]);
    check(/as saved/.test(verdict) && qh[0] === run.trace_hash && qh[1] === 6,
      `import: ${verdict} (page at ${qh[2].slice(0, 60)}...)`);
    // Through the file input too.
    await q.setInputFiles('#import', { name: 'run.json', mimeType: 'application/json', buffer: Buffer.from(text) });
    await q.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 10_000 });
    check(/as saved/.test(await q.locator('#error').innerText()), `import through the file input (${await q.locator('#error').innerText()})`);
    const bad = JSON.stringify({ ...run, trace_hash: '0000000000000000' });
    const err = await q.evaluate((t) => { try { window.shen.importRun(t); return ''; } catch (e) { return e.message; } }, bad);
    check(/replayed to trace [0-9a-f]{16}, the file says 0000000000000000/.test(err), `a tampered run file is refused (${err})`);
    const err2 = await q.evaluate(() => { try { window.shen.importRun('{"format":"x"}'); return ''; } catch (e) { return e.message; } });
    check(/want \{"format": "shen-viz-run"/.test(err2), `a foreign file is refused (${err2})`);
    await q.close();
  }

  // ---- 8. Ankh keys: dots, the keys a join moves, a replica walk
  {
    const p = await openPage(browser, server.url, 'seed=11&nodes=6', errors);
    await p.evaluate(() => { window.shen.play(false); window.shen.viz.advance(2500, 0); });
    await p.click('#add');
    await p.evaluate(() => window.shen.viz.advance(3000, 0));
    const k = await p.evaluate(() => JSON.parse(window.shen.viz.keysJson()));
    const l = k.last;
    check(k.keys === 256 && l && l.members_before === 6 && l.members_after === 7 && l.moved > 0 &&
      l.moved < 128 && JSON.stringify(l.moved_to) === '[6]' && Math.abs(l.ideal - 1 / 7) < 1e-9,
      `a join moves ${l && l.moved} of 256 sample keys, all to the new node (ideal ${(100 / 7).toFixed(1)}%)`);
    await p.waitForTimeout(300);
    const txt = await p.locator('#keysinfo').innerText();
    check(/from 6 to 7 members: \d+ of 256 keys moved/.test(txt), `the keys panel counts them (${txt.split('\n')[0]})`);
    // A key dot drawn in its owner's colour; clicking it draws its walk.
    const [kx, ky] = await p.evaluate(() => window.shen.viz.keyPos(40));
    const hitK = await p.evaluate(([x, y]) => window.shen.viz.keyAt(x, y, 5), [kx, ky]);
    const cb = await p.locator('#canvas').boundingBox();
    await p.mouse.click(cb.x + 1 + kx, cb.y + 1 + ky);
    const sel = await p.evaluate(() => JSON.parse(window.shen.viz.keysJson()).selected);
    check(hitK >= 0 && sel && sel.key === hitK && sel.replicas.length === 3 && new Set(sel.replicas).size === 3,
      `clicking key ${hitK} draws its replica walk ${sel && sel.replicas.join(' → ')}`);
    // The move, mid-flight, for the README.
    const moving = await p.evaluate((at) => { window.shen.viz.seek(at / 1000 + 350); return JSON.parse(window.shen.viz.keysJson()).last; }, l.at_us);
    await p.evaluate(() => window.shen.viz.draw());
    await p.locator('#canvas').screenshot({ path: join(ROOT, 'wasm-viz/e2e/keys.png') });
    check(moving && moving.at_us === l.at_us && moving.moved === l.moved,
      'scrubbed back into the move, it is the same move (screenshot keys.png)');
    await p.close();
  }

  // ---- 9. delivery-choice mode: pick, replay, branch
  {
    const p = await openPage(browser, server.url, 'seed=12&nodes=4', errors);
    await p.evaluate(() => { window.shen.play(false); window.shen.viz.advance(1000, 0); });
    await p.check('#choosemode');
    await p.waitForFunction(() => document.querySelectorAll('#choicelist li').length > 3, null, { timeout: 5000 });
    const t0 = await p.evaluate(() => window.shen.viz.timeMs());
    // Deliver the third event in line, then the first, then drop one.
    await p.locator('#choicelist li').nth(2).locator('button.pick').click();
    await p.locator('#choicelist li').nth(0).locator('button.pick').click();
    await p.locator('#choicelist li', { hasText: '→' }).first().locator('button', { hasText: 'Drop' }).click();
    const a = await p.evaluate(() => ({ t: window.shen.viz.timeMs(), hash: location.hash.slice(1), trace: window.shen.viz.traceHash(), script: window.shen.viz.script() }));
    check(a.t === t0 && (a.script.match(/:(deliver|fire|lose):/g) || []).length === 3,
      `three choices made without time moving (${a.script})`);
    await p.screenshot({ path: join(ARTIFACTS, 'viz-choice.png') });
    await p.locator('#choose').screenshot({ path: join(ROOT, 'wasm-viz/e2e/choice.png') });
    // The link replays to the same trace hash in a fresh page.
    const q = await openPage(browser, server.url, a.hash, errors);
    const qh = await q.evaluate((t) => { window.shen.play(false); window.shen.viz.seek(t); return window.shen.viz.traceHash(); }, a.t);
    check(qh === a.trace, `the chosen order's link replays to the same trace hash (${a.trace} = ${qh})`);
    await q.close();
    // Rewind to before the choices, choose differently: a second branch.
    await p.evaluate((t) => window.shen.viz.seek(t), t0 - 5);
    await p.waitForTimeout(300);
    await p.locator('#choicelist li').nth(1).locator('button.pick').click();
    const b = await p.evaluate(() => ({ trace: window.shen.viz.traceHash(), n: window.shen.choice.branches.length, tree: document.getElementById('branches').innerText }));
    check(b.n === 2 && b.trace !== a.trace && /branch 1 \(from 0 at/.test(b.tree),
      `a different choice after a rewind keeps both branches (${b.tree.replaceAll('\n', ' | ')})`);
    await p.locator('#branches div').first().click();
    await p.waitForFunction((h) => window.shen.viz.traceHash() === h, a.trace, { timeout: 10_000 });
    check(true, 'clicking branch 0 goes back to it (same trace hash)');
    await p.close();
  }

  // ---- live mode against a fake admin API
  {
    const fake = await fakeAdmin();
    try {
      const p = await openPage(browser, server.url, `live=127.0.0.1:${fake.port}`, errors);
      await p.waitForFunction(() => window.shen.live && window.shen.live.ok, null, { timeout: 10_000 });
      await p.waitForFunction(() => window.shen.live.state().events >= 2, null, { timeout: 10_000 });
      const st = await p.evaluate(() => window.shen.live.state());
      check(st.status.members.length === 4 && st.status.chains.length === 8,
        `live: ${st.status.members.length} members and ${st.status.chains.length} chains from /status`);
      check(st.events >= 2 && fake.served.status >= 1 && fake.served.events === 1,
        `live: ${st.events} events over SSE, /status polled ${fake.served.status}×`);
      const text = await p.locator('#livestatus').innerText();
      check(/4 members/.test(text) && /log of 8 partitions/.test(text), `live status line (${text})`);
      check(/sundial\.suspected/.test(await p.locator('#liveevents').innerText()), 'live: the events list names them');
      const colours = await p.evaluate(() => {
        const c = document.getElementById('canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 5) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return seen.size;
      });
      check(colours > 20, `live: the cluster is drawn (${colours} colours)`);
      await p.screenshot({ path: join(ARTIFACTS, 'viz-live.png') });
      await p.click('#livefork');
      await p.waitForFunction(() => window.shen.live === null && window.shen.viz.nodeCount() === 4, null, { timeout: 10_000 });
      const hash = await p.evaluate(() => location.hash);
      check(/nodes=4&rings=sundial,cartouche,ouroboros/.test(hash) && await p.evaluate(() => window.shen.viz.hasLog()),
        `fork: a simulated log world of the live cluster's size (${hash})`);
      check(/&down=3&/.test(hash) && /&chains=2\.1:0-1-2,2\.1:1-2-0,/.test(hash) && /faults=0:crash:3/.test(hash),
        `fork: the link carries the dead member and the log's chains with their epochs (${hash})`);
      await p.evaluate(() => { window.shen.play(false); window.shen.viz.seek(1); });
      const forked = await p.evaluate(() => {
        const dbg = window.shen.viz.logDebug(0, 1);
        window.shen.viz.seek(100);
        return { dbg, up: JSON.parse(window.shen.viz.summaryJson()).nodes.map((n) => n.up) };
      });
      check(/chain Fencing \{ generation: 2, sequence: 1 \}/.test(forked.dbg) && /\(\[1, 2, 0\], \[\]\)/.test(forked.dbg),
        `fork: the sim starts from the cluster's chain for partition 1, epoch 2.1 (${forked.dbg.slice(0, 120)})`);
      check(forked.up.join() === 'true,true,true,false', `fork: the dead member is down from the start (${forked.up.join()})`);
      await p.close();
    } finally {
      fake.stop();
    }
    // Nothing listens there (a port just freed): a message, retried, no crash.
    const closed = await new Promise((ok) => {
      const s = createServer().listen(0, '127.0.0.1', () => { const port = s.address().port; s.close(() => ok(port)); });
    });
    const p = await openPage(browser, server.url, `live=127.0.0.1:${closed}`, errors);
    await p.waitForFunction(() => /cannot read/.test(document.getElementById('livestatus').textContent), null, { timeout: 10_000 });
    check(/Is `shen run` running/.test(await p.locator('#livestatus').innerText()), 'live: an unreachable address says so');
    await p.evaluate(() => { location.hash = 'live=no%20such%20host'; });
    await p.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 5_000 });
    check(/bad live address `no such host`/.test(await p.locator('#error').innerText()) &&
      await p.evaluate(() => window.shen.live === null), 'live: a malformed address is refused with a message');
    await p.close();
    errors.splice(0, errors.length, ...errors.filter((e) => !/ERR_CONNECTION_REFUSED|bad live address/.test(e)));
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
