// The side-by-side mode, end to end (called from e2e.mjs): two worlds of
// one seed differing in one setting run in lockstep; a crash made by
// double-clicking world A's canvas lands in both at the same virtual time;
// the figures that must differ do (and those that must not, don't); each
// world replays from its own single-world link, and the shared link, to
// the same trace hash; world A's exported scenario replays natively to it
// too. Saves sidebyside.png for the README.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, openPage } from './common.mjs';

const ready = (p) => p.waitForFunction(() => window.shenSbs && window.shenSbs.active, null, { timeout: 30_000 });

// Open `hash` as one world and return its trace hash at `tMs` (the page
// plays on from its `t`: pause, and go back there).
async function singleHash(browser, url, hash, errors, tMs) {
  const p = await openPage(browser, url, hash, errors);
  await p.evaluate(() => window.shen.play(false));
  const h = await p.evaluate((t) => { window.shen.viz.seek(t); return window.shen.summary().trace_hash; }, tMs);
  await p.close();
  return h;
}

export async function sideBySideE2E(browser, url, errors, check, nativeHash) {
  console.log('side by side');
  // ---- fanout 1 vs 4, a crash made on world A's canvas
  const p = await openPage(browser, url, 'sbs=fanout:1/4&seed=3&nodes=12', errors);
  await ready(p);
  await p.evaluate(() => { window.shenSbs.play(false); window.shenSbs.seek(2500); });
  check(await p.evaluate(() => !document.querySelector('main').checkVisibility()), 'the one-world page is hidden');
  const victim = 5;
  const [x, y] = await p.evaluate((id) => window.shenSbs.a.nodePos(id), victim);
  const box = await p.locator('#sbsa').boundingBox();
  await p.mouse.dblclick(box.x + x, box.y + y);
  const scripts = await p.evaluate(() => [window.shenSbs.a.script(), window.shenSbs.b.script()]);
  check(scripts[0].includes(`:crash:${victim}`) && scripts[0] === scripts[1],
    `double-clicking world A crashed node ${victim} in both at one time (${scripts.join(' | ')})`);
  await p.evaluate(() => window.shenSbs.seek(9000));
  const [fa, fb] = await p.evaluate(() => window.shenSbs.figures());
  check(fa.time_us === 9_000_000 && fb.time_us === 9_000_000, 'both worlds at 9 s (lockstep)');
  check(fa.detection && fb.detection && fa.detection.node === victim && fb.detection.node === victim &&
    fa.detection.crashed_us === fb.detection.crashed_us,
  `both saw node ${victim} crash at the same time (${JSON.stringify([fa.detection, fb.detection])})`);
  check(fa.dead_after_ms > 0 && fb.dead_after_ms > 0,
    `both declared it dead (after ${fa.dead_after_ms} ms and ${fb.dead_after_ms} ms)`);
  check(fa.messages < fb.messages, `fanout 1 sends fewer messages than fanout 4 (${fa.messages} < ${fb.messages})`);
  check(fa.trace_hash !== fb.trace_hash, 'different settings, different runs (trace hashes differ)');
  const rows = await p.evaluate(() => [...document.querySelectorAll('#sbsfig tr')].map((tr) => ({
    cells: [...tr.children].map((td) => td.textContent), differs: tr.classList.contains('differs') })));
  const row = (name) => rows.find((r) => r.cells[0] === name) || { cells: [], differs: null };
  check(row('messages sent').differs && row('messages sent').cells[1] === String(fa.messages),
    `the figures table shows messages sent side by side, highlighted (${row('messages sent').cells.join(' / ')})`);
  check(row('last crash').differs === false, `the crash row is the same in both (${row('last crash').cells.join(' / ')})`);
  const pair = await p.evaluate(() => window.shenSbs.hash());
  check(pair.startsWith('sbs=fanout:1/4&') && pair.includes('&t=9000') && pair.includes(`crash:${victim}`),
    `the URL carries the mode, the setting, the script and the time (${pair})`);
  check(await p.evaluate(() => location.hash.slice(1)) === pair, 'the address bar follows the pair');
  await p.locator('#sbsview').screenshot({ path: join(ROOT, 'wasm-viz/e2e/sidebyside.png') });
  const info = await p.evaluate((h) => window.shenSbs.describe(h), pair);
  // ---- each world alone, from its own link: the same trace hash
  const ha = await singleHash(browser, url, info.hashes[0], errors, 9000);
  const hb = await singleHash(browser, url, info.hashes[1], errors, 9000);
  check(ha === fa.trace_hash, `world A's own link (${info.hashes[0]}) replays to its trace hash (${ha})`);
  check(hb === fb.trace_hash, `world B's own link replays to its trace hash (${hb})`);
  // ---- natively: world A's scenario (it carries fanout 1)
  const toml = await p.evaluate(() => window.shenSbs.a.scenarioToml());
  const file = join(tmpdir(), `shen-sbs-${process.pid}.toml`);
  writeFileSync(file, toml);
  check(/fanout = 1\b/.test(toml), 'world A\'s exported scenario runs fanout 1');
  check(nativeHash(file, 3) === fa.trace_hash, 'world A replays natively (shen sim run) to the same trace hash');
  await p.close();
  // ---- the shared link opens the same pair at the same point
  const q = await openPage(browser, url, pair, errors);
  await ready(q);
  await q.evaluate(() => { window.shenSbs.play(false); window.shenSbs.seek(9000); });
  const again = await q.evaluate(() => window.shenSbs.figures().map((f) => [f.time_us, f.trace_hash]));
  check(again[0][0] === 9_000_000 && again[0][1] === fa.trace_hash && again[1][1] === fb.trace_hash,
    `the shared link replays both worlds (${JSON.stringify(again)})`);
  // Back to one world from the pair, and into a pair from the side panel.
  await q.click('#sbsclose');
  await q.waitForFunction(() => !window.shenSbs.active);
  await q.evaluate(() => { window.shen.play(false); window.shen.viz.seek(9000); });
  check(await q.evaluate(() => window.shen.summary().trace_hash) === fa.trace_hash,
    '"One world" opens world A alone, where the pair was');
  await q.selectOption('#sbssetting', 'vnodes');
  await q.fill('#sbsvalues', '8/160');
  await q.click('#sbsopen');
  await ready(q);
  check(await q.evaluate(() => window.shenSbs.info.values.join('/')) === '8/160' &&
    await q.evaluate(() => location.hash).then((h) => h.startsWith('#sbs=vnodes:8/160&seed=3&nodes=12')),
  'the Compare button opens this world\'s seed side by side');
  await q.close();

  // ---- keys and the token request, in both
  const k = await openPage(browser, url, 'sbs=phi:3/12&seed=4&nodes=5', errors);
  await ready(k);
  await k.evaluate(() => { window.shenSbs.play(false); window.shenSbs.seek(2000); });
  await k.keyboard.press('ArrowRight');
  await k.keyboard.press('Shift+ArrowRight');
  check(await k.evaluate(() => [window.shenSbs.a.timeMs(), window.shenSbs.b.timeMs()].join()) === '3100,3100',
    '→ and shift → move both worlds 100 ms and 1 s');
  await k.keyboard.press('Space');
  check(await k.evaluate(() => document.getElementById('sbsplay').textContent) === 'Pause', 'space plays the pair');
  await k.keyboard.press('Space');
  await k.click('#sbsreq');
  await k.evaluate(() => window.shenSbs.seek(5000));
  const acq = await k.evaluate(() => window.shenSbs.figures().map((f) => f.acquisitions));
  check(acq[0] >= 1 && acq[1] >= 1, `Request token: a grant in both worlds (${acq.join(' / ')})`);
  await k.close();

  // ---- the token's Want shortcut on vs off: the same requests wait less
  // with it (the idle token comes straight to the requester).
  const reqs = [[2000, 1], [2700, 5], [3400, 3], [4100, 6], [4800, 2], [5500, 4]];
  const w = await openPage(browser, url,
    `sbs=shortcut:on/off&seed=4&nodes=7&faults=${reqs.map(([t, n]) => `${t * 1000}:req:${n}`).join(',')}`, errors);
  await ready(w);
  await w.evaluate(() => { window.shenSbs.play(false); window.shenSbs.seek(10000); });
  const [wa, wb] = await w.evaluate(() => window.shenSbs.figures());
  check(wa.acquisitions === 6 && wb.acquisitions === 6, `shortcut on/off: every request granted in both (${wa.acquisitions} / ${wb.acquisitions})`);
  check(wa.shortcuts > 0 && wb.shortcuts === 0, `only world A sends idle tokens straight to requesters (${wa.shortcuts} / ${wb.shortcuts})`);
  check(wa.grant_wait_ms < wb.grant_wait_ms,
    `with the shortcut requests wait less (${wa.grant_wait_ms.toFixed(0)} ms vs ${wb.grant_wait_ms.toFixed(0)} ms)`);
  const wrows = await w.evaluate(() => [...document.querySelectorAll('#sbsfig tr')].map((tr) => [...tr.children].map((td) => td.textContent)));
  const waitRow = wrows.find((r) => r[0].trim() === 'mean wait for the token') || [];
  check(waitRow.length === 3 && waitRow[1] !== waitRow[2], `the figures table shows the two waits (${waitRow.join(' / ')})`);
  await w.close();

  // ---- vnodes 1 vs 160: the same run, different keys moved
  const v = await openPage(browser, url, 'sbs=vnodes:1/160&seed=2&nodes=5', errors);
  await ready(v);
  await v.evaluate(() => { window.shenSbs.play(false); window.shenSbs.seek(2000); });
  await v.click('#sbsadd');
  await v.evaluate(() => window.shenSbs.seek(6000));
  const [ka, kb] = await v.evaluate(() => window.shenSbs.figures());
  check(ka.trace_hash === kb.trace_hash, `vnodes only place keys: the same run in both (${ka.trace_hash})`);
  check(ka.keys_moved !== kb.keys_moved && kb.keys_moved > 0,
    `a join moves different keys (${ka.keys_moved} vs ${kb.keys_moved} of 256, ideal ${kb.keys_ideal.toFixed(1)})`);
  check(Math.abs(kb.keys_moved - kb.keys_ideal) < kb.keys_ideal * 0.5,
    `with 160 vnodes about the ideal share moves (${kb.keys_moved} vs ${kb.keys_ideal.toFixed(1)})`);
  await v.close();

  // ---- a bad pair is a message, not a crash
  const bad = await openPage(browser, url, 'sbs=fanout:0/3', errors);
  await bad.waitForFunction(() => window.shenSbs);
  const msg = await bad.evaluate(() => document.getElementById('error').textContent);
  check(/world A \(fanout=0\)/.test(msg) && await bad.evaluate(() => !window.shenSbs.active),
    `a bad side-by-side link says what is wrong (${msg})`);
  await bad.close();
}
