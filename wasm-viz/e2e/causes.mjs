// Causality across rings, end to end (called from e2e.mjs): in a log
// world, crash the head of a partition's chain; click the line where
// another node installs the new table of chains in the event log: the page
// lists its causes back to the crash (suspicion, death, the log's wish for
// the token, the request, the grant, the configuration round), marks them
// in the log and draws them on the space-time diagram; selecting is view
// state (the trace hash does not change). Saves causes.png and
// causes-st.png for the README.
import { join } from 'node:path';
import { ROOT, openPage } from './common.mjs';

export async function causesE2E(browser, url, errors, check) {
  console.log('causality across rings');
  const p = await openPage(browser, url, 'seed=11&nodes=5&rings=sundial,cartouche,ouroboros', errors);
  await p.waitForFunction(() => window.shenCauses);
  const head = await p.evaluate(() => {
    const v = window.shen.viz;
    window.shen.play(false);
    v.seek(2000);
    v.append(0, 'k1');
    v.seek(4000);
    const s = window.shen.state();
    const part = v.partitionOfKey('k1');
    const h = s.log.chains[part].chain[0];
    v.crash(h);
    v.seek(6500);
    return h;
  });
  // The event log shows the newest lines: find the new table, told by a
  // node other than the round's leader.
  await p.waitForFunction(() => document.querySelectorAll('#narr li').length > 0);
  const pick = await p.evaluate(() => {
    const lines = JSON.parse(window.shen.viz.narrationJson(4000)).lines;
    // (At start every node may run a round that changes nothing: skip
    // those, and everything before the crash.)
    const leader = lines.find((l) => l.text.includes('installed new chains') && l.at_us > 4_000_000 &&
      !l.text.includes(', 0 partition(s) changed'));
    const l = leader && lines.find((x) => x.text.includes('installs the new table of chains') &&
      x.node !== leader.node && x.at_us >= leader.at_us);
    return l ? { id: l.id, at: l.at_us } : null;
  });
  check(!!pick, `another node installs the new table (line ${JSON.stringify(pick)})`);
  if (!pick) return;
  const li = p.locator(`#narr li[data-id="${pick.id}"]`);
  check(await li.count() === 1, 'the line is in the event log');
  const hash0 = await p.evaluate(() => window.shen.summary().trace_hash);
  await li.click();
  const chain = await p.evaluate(() => window.shenCauses.chain.map((l) => l.text));
  const order = [`node ${head} crashes`, `suspects node ${head}`, `declares node ${head} dead`,
    'wants the log reconfigured', 'asks for the lock', 'is granted the lock', 'installed new chains',
    'installs the new table of chains'];
  let at = 0;
  let ok = true;
  for (const w of order) {
    const i = chain.slice(at).findIndex((t) => t.includes(w));
    if (i < 0) { ok = false; break; }
    at += i + 1;
  }
  check(ok, `its causes run back to the crash across rings (${chain.join(' → ')})`);
  const why = await p.locator('#why li').allInnerTexts();
  check(why.length === chain.length && why[0].includes(`node ${head} crashes`),
    `the Why box lists them, oldest first (${why.length} lines)`);
  check(await p.locator('#narr li.cause').count() > 0 && await p.locator('#narr li.effect').count() === 1,
    'the causes are marked in the event log');
  // At the line's instant (the click jumped there), with and without the
  // chain: a ring per line in the window and a link per cause.
  const [marked, plain] = await p.evaluate((id) => {
    const v = window.shen.viz;
    const n = v.drawSpacetime();
    v.setCauses(-1);
    const m = v.drawSpacetime();
    v.setCauses(id);
    v.drawSpacetime();
    return [n, m];
  }, pick.id);
  check(marked - plain >= 5, `the space-time diagram draws the chain (${plain} → ${marked} shapes)`);
  await p.locator('#stwrap').screenshot({ path: join(ROOT, 'wasm-viz/e2e/causes-st.png') });
  await p.locator('#story').screenshot({ path: join(ROOT, 'wasm-viz/e2e/causes.png') });
  // Clicking a cause in the Why box jumps there; the run is unchanged.
  await p.locator('#why li').first().click();
  const t = await p.evaluate(() => window.shen.viz.timeMs());
  check(Math.abs(t * 1000 - (await p.evaluate(() => window.shenCauses.chain[0].at_us))) < 1,
    `a cause in the Why box jumps the timeline to it (${t} ms)`);
  await p.evaluate((ms) => window.shen.viz.seek(ms), pick.at / 1000);
  await p.evaluate(() => window.shen.viz.seek(6500));
  check(await p.evaluate(() => window.shen.summary().trace_hash) === hash0, 'selecting causes leaves the trace hash alone');
  await p.evaluate((ms) => window.shen.viz.seek(ms), pick.at / 1000);
  await p.evaluate(() => window.shenCauses.clear());
  check(await p.locator('#why').isHidden() && await p.evaluate(() => window.shen.viz.drawSpacetime()) === plain,
    'Clear removes the chain');
  await p.close();
}
