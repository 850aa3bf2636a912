// An elastic log world, end to end (called from e2e.mjs): "Add node" in a
// log world starts a node that joins on its own: the member count in the
// log panel grows and the node ends up in some chain; "Leave the log" in
// the Node panel moves a member's chains away, takes it out of the member
// set and stops it for good; no acknowledged append is lost; the URL
// (with `add` and `leave`) replays to the same trace hash.
import { openPage } from './common.mjs';

const summary = (p) => p.evaluate(() => window.shen.summary());

// Advance 250 ms at a time until `cond(summary)` holds, at most `maxMs`.
async function advanceUntil(p, maxMs, cond) {
  for (let t = 0; t < maxMs; t += 250) {
    await p.evaluate(() => window.shen.viz.advance(250, 0));
    const s = await summary(p);
    if (cond(s)) return s;
  }
  return null;
}

export async function elasticE2E(browser, url, errors, check) {
  console.log('elastic log');
  const p = await openPage(browser, url, 'seed=6&nodes=4&rings=sundial,cartouche,ouroboros', errors);
  await p.evaluate(() => { window.shen.play(false); window.shen.viz.advance(2000, 0); });
  await p.fill('#logkey', 'el');
  await p.click('#logburst');
  await p.evaluate(() => window.shen.viz.advance(2000, 0));
  let s = await summary(p);
  await p.waitForTimeout(200);
  let panel = await p.locator('#logchain').innerText();
  check(s.log.members.nodes.length === 4 && /members v0 \(4\): 0, 1, 2, 3/.test(panel),
    `log world: the panel shows the member set (${panel.split('\n')[1]})`);
  check(s.log.acked === 5, `five appends acknowledged before the join (${s.log.acked})`);

  // ---- add a node: it joins on its own
  await p.click('#add');
  check(await p.evaluate(() => window.shen.viz.nodeCount()) === 5 && /:add$/.test((await summary(p)).script),
    'Add node started node 4 in the log world');
  s = await advanceUntil(p, 20_000, (x) => x.log.members.nodes.includes(4));
  check(s && s.log.members.nodes.length === 5 && s.log.members.version > 0,
    `node 4 became a member (${s && JSON.stringify(s.log.members)})`);
  s = await advanceUntil(p, 20_000, (x) => x.log.chains.some((c) => c.chain.includes(4)));
  check(s != null, 'node 4 joined a chain');
  // A move adds the new replica before it drops the old one; let the
  // moves finish.
  await p.evaluate(() => window.shen.viz.advance(10_000, 0));
  s = await summary(p);
  const mine = s.log.chains.filter((c) => c.chain.includes(4)).map((c) => c.partition);
  check(mine.length > 0 && s.log.chains.every((c) => c.chain.length === 3),
    `node 4 is in the chains of partition(s) ${mine.join(', ')}; every chain has three members (${s.log.chains.map((c) => c.chain.join('')).join(' ')})`);
  await p.waitForTimeout(200);
  panel = await p.locator('#logchain').innerText();
  check(/members v\d+ \(5\): 0, 1, 2, 3, 4/.test(panel), `the panel's member count grew (${panel.split('\n')[1]})`);

  // ---- node 1 leaves through the Node panel
  const [x, y] = await p.evaluate(() => window.shen.viz.nodePos(1));
  const box = await p.locator('#canvas').boundingBox();
  await p.mouse.click(box.x + 1 + x, box.y + 1 + y);
  await p.click('#logleave');
  s = await summary(p);
  check(s.log.leave_asked.includes(1) && /:leave:1/.test(s.script), `node 1 asked to leave (${s.script})`);
  s = await advanceUntil(p, 30_000, (q) => q.log.gone.includes(1));
  check(s && !s.log.members.nodes.includes(1) && !s.nodes[1].up &&
    s.log.chains.every((c) => !c.chain.includes(1) && c.chain.length === 3),
  `node 1 left: out of the member set (${s && s.log.members.nodes.join(',')}), out of every chain, stopped`);
  await p.waitForTimeout(200);
  panel = await p.locator('#logchain').innerText();
  check(/left for good: 1/.test(panel), 'the panel says node 1 left for good');

  // ---- node 3 dies; "Remove member" (sent from another member) takes it out
  const [x3, y3] = await p.evaluate(() => window.shen.viz.nodePos(3));
  await p.mouse.dblclick(box.x + 1 + x3, box.y + 1 + y3);
  await p.evaluate(() => window.shen.viz.advance(1000, 0));
  await p.mouse.click(box.x + 1 + x3, box.y + 1 + y3);
  await p.click('#logremove');
  s = await advanceUntil(p, 30_000, (q) => !q.log.members.nodes.includes(3));
  check(s && s.log.members.nodes.join(',') === '0,2,4' && /:crash:3,\d+:remove:3/.test(s.script),
    `the dead node 3 was removed (${s && s.log.members.nodes.join(',')}; ${s && s.script})`);
  s = await advanceUntil(p, 20_000, (q) => q.log.chains.every((c) => !c.chain.includes(3) && c.chain.length === 3));
  check(s != null, 'every chain rebuilt on the three members left');

  // ---- nothing acknowledged is lost; appends still work
  await p.click('#logappend');
  await p.evaluate(() => window.shen.viz.advance(3000, 0));
  s = await summary(p);
  check(s.log.acked === 6 && s.log.ops.every((o) => o.outcome.state === 'acked'),
    `every append acknowledged (${s.log.ops.map((o) => o.outcome.state).join(',')})`);
  check(s.invariants.every((i) => i.state === 'ok' && i.first_violation_us == null),
    `no invariant violated (${s.invariants.map((i) => `${i.name} ${i.state}`).join(', ')})`);

  // ---- the link replays the same run
  const [hash, trace, t] = await p.evaluate(() => [window.shen.viz.urlHash(), window.shen.viz.traceHash(), window.shen.viz.timeMs()]);
  const q = await openPage(browser, url, hash, errors);
  const qh = await q.evaluate((ms) => { window.shen.play(false); window.shen.viz.seek(ms); return window.shen.viz.traceHash(); }, t);
  check(/:add/.test(hash) && /:leave:1/.test(hash) && qh === trace, `the elastic run's link replays to the same trace hash (${trace} = ${qh})`);
  await q.close();
  await p.close();
}
