// The lessons, end to end (called by e2e.mjs): every lesson of every ring
// driven to its end through the page (the learner's actions by mouse and
// buttons, every prediction answered and, where the protocol decides it,
// the answer checked), the canvas highlight, every ring's challenge
// refereed, every step opened from a link, and teacher links to
// mid-lesson steps played.
//
// Env: LESSONS=ankh,cartouche runs only those lessons' part (empty: none;
// the teacher links still run); LESSON_DEBUG=1 prints a failed prediction's context
// and the run's URL hash (replay it to see why).
import { join } from 'node:path';
import { ROOT, openPage } from './common.mjs';

// What a learner does at each step that asks for an action (1-based).
const ACTIONS = {
  ankh: {
    2: async (p, u) => { const [x, y] = await p.evaluate(() => window.shen.viz.keyPos(40)); await u.click(x, y); },
    9: async (p, u) => { await p.click('#add'); await u.advance(5000); },
  },
  sundial: {
    3: async (p, u) => { await u.clickNode(0); },
    6: async (p, u) => { await u.dblclickNode(await p.evaluate(() => window.shen.lesson.ctx.victim)); await u.advance(3000); },
    8: async (p, u) => { await p.click('#heal'); await u.advance(4000); },
    9: async (p, u) => {
      await u.slider('#loss', '0.3');
      await u.advance(2000);
      await u.slider('#loss', '0');
      await u.advance(500);
    },
  },
  cartouche: {
    2: async (p, u) => { await u.clickNode(2); await p.click('#nodeinfo button:text("Request token")'); await u.advance(3000); },
    8: async (p, u) => { await p.click('#heal'); await u.advance(1000); },
    10: async (p, u) => { await p.click('#heal'); await u.advance(6000); },
  },
  ouroboros: {
    2: async (p, u) => { await p.fill('#logkey', 'e2e'); await p.click('#logappend'); await u.advance(2000); },
    7: async (p, u) => { const d = await p.evaluate(() => window.shen.lesson.ctx.dead); if (d != null) await u.dblclickNode(d); await u.advance(2000); },
    9: async (p, u) => { await p.click('#heal'); await u.advance(1000); },
    12: async (p, u) => { await u.clickNode(1); await p.click('#logleave'); await u.advance(8000); },
  },
};

// What the protocols must answer, where the answer does not depend on
// luck: `(result, ctx) => bool`.
const EXPECT = {
  ankh: {
    4: (r) => r.actual === 'share',
    6: (r, c) => r.actual === c.expected,
    8: (r) => r.actual === 'same',
  },
  sundial: { 4: (r) => r.actual === 'fast' || r.actual === 'mid', 7: (r) => r.actual === 'yes' },
  cartouche: { 4: (r) => r.actual === 'resent' || r.actual === 'regen', 5: (r) => r.actual === 'soon', 7: (r) => r.actual === 'no', 9: (r) => r.actual === 'no' },
  ouroboros: { 4: (r, c) => r.actual === c.chain.at(-1), 5: (r) => r.actual === 'yes', 8: (r) => r.actual === 'rebuilt', 10: (r) => r.actual === 'copy_first' },
};

function ui(p) {
  const canvas = async () => p.locator('#canvas').boundingBox();
  const u = {
    advance: (ms) => p.evaluate((m) => window.shen.viz.advance(m, 0), ms),
    click: async (x, y) => { const b = await canvas(); await p.mouse.click(b.x + 1 + x, b.y + 1 + y); },
    clickNode: async (id) => { const [x, y] = await p.evaluate((i) => window.shen.viz.nodePos(i), id); await u.click(x, y); },
    dblclickNode: async (id) => { const [x, y] = await p.evaluate((i) => window.shen.viz.nodePos(i), id); const b = await canvas(); await p.mouse.dblclick(b.x + 1 + x, b.y + 1 + y); },
    slider: (sel, v) => p.evaluate(([s, val]) => { const e = document.querySelector(s); e.value = val; e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); }, [sel, v]),
  };
  return u;
}

// Bright grey pixels on the canvas (the highlight's outlines are white).
const whitePixels = (p) => p.evaluate(() => {
  window.shen.viz.draw();
  const c = document.getElementById('canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  // (Bright greys: the pulse runs from 55% to 100% white.)
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] > 130 && Math.abs(d[i] - d[i + 1]) < 12 && Math.abs(d[i + 1] - d[i + 2]) < 12) n++;
  }
  return n;
});

// Play the step the page shows: act or predict, then wait for the check.
async function playStep(p, name, n, kind, check) {
  const u = ui(p);
  if (kind === 'check') {
    const act = ACTIONS[name][n];
    if (!act) { check(false, `${name} step ${n}: the e2e test knows no action for it`); return false; }
    await act(p, u);
    const ok = await p.waitForFunction(() => window.shen.lesson.passed, null, { timeout: 15_000 }).then(() => true, () => false);
    check(ok, `${name} step ${n}: the learner's action passes its check`);
    return ok;
  }
  if (kind === 'predict') {
    const opts = p.locator('#lessonopts button');
    const count = await opts.count();
    if (count < 2) { check(false, `${name} step ${n}: a prediction with ${count} options`); return false; }
    await opts.nth(count - 1).click();
    // The page shows the outcome at REVEAL_SPEED; skip to it.
    if (await p.locator('#lessonskip').count()) await p.click('#lessonskip').catch(() => {});
    const ok = await p.waitForFunction(() => window.shen.lesson.result, null, { timeout: 30_000 }).then(() => true, () => false);
    const r = await p.evaluate(() => ({ result: window.shen.lesson.result, ctx: JSON.parse(JSON.stringify(window.shen.lesson.ctx)) }));
    const text = await p.locator('#lessontext').innerText();
    const expect = EXPECT[name][n];
    const right = ok && r.result && (!expect || expect(r.result, r.ctx));
    if (!right && process.env.LESSON_DEBUG) console.log('DEBUG', JSON.stringify(r.ctx), await p.evaluate(() => window.shen.viz.urlHash()));
    check(right && /You were right|Not quite/.test(text),
      `${name} step ${n}: prediction answered; the page says "${(r.result && r.result.text || '').slice(0, 110)}…"`);
    return right;
  }
  return true;
}

export async function lessonsE2E(browser, url, errors, check) {
  // ---- every lesson, from its first step to its last
  for (const name of (process.env.LESSONS ?? 'ankh,sundial,cartouche,ouroboros').split(',').filter(Boolean)) {
    const t0 = Date.now();
    const p = await openPage(browser, url, 'seed=1&nodes=3', errors);
    await p.evaluate(() => window.shen.play(false));
    // A 3-node world fits no lesson: the button opens the lesson's world.
    await p.click(`#lessonpick button[data-lesson="${name}"]`);
    await p.waitForFunction((n) => window.shen.lesson.name === n, name, { timeout: 10_000 });
    await p.evaluate(() => window.shen.play(false));
    const kinds = await p.evaluate((n) => window.shen.lesson.steps(n), name);
    check(kinds.length >= 8 && kinds.includes('predict') && kinds.includes('check'),
      `${name}: ${kinds.length} steps (${kinds.filter((k) => k === 'predict').length} predictions, ${kinds.filter((k) => k === 'check').length} actions)`);
    let ok = true;
    let lit = 0;
    for (let i = 0; i < kinds.length && ok; i++) {
      const n = i + 1;
      const at = await p.evaluate(() => [window.shen.lesson.ix, location.hash]);
      if (at[0] !== i || !at[1].endsWith(`&lesson=${name}&step=${n}`)) {
        check(false, `${name}: at step ${n} (page at ${at[0] + 1}, hash ${at[1]})`);
        ok = false;
        break;
      }
      if (JSON.parse(await p.evaluate(() => window.shen.lesson.highlight) || '{}') && await p.evaluate(() => window.shen.lesson.highlight) !== '{}'
        && await p.evaluate(() => window.shen.lesson.highlight) !== 'null') lit++;
      const shown = await p.locator('#lessontext').innerText();
      if (/cannot be shown/.test(shown)) check(false, `${name} step ${n}: ${shown}`);
      if (kinds[i] !== 'read') {
        check(await p.locator('#lessonnext').isDisabled(), `${name} step ${n}: Next waits (${kinds[i]})`);
      }
      if (name === 'ankh' && n === 1) {
        // The outlines are drawn on the canvas: white pixels appear, and
        // go with the highlight; the run does not notice.
        const h = await p.evaluate(() => window.shen.lesson.highlight);
        const trace = await p.evaluate(() => window.shen.viz.traceHash());
        const withHl = await whitePixels(p);
        await p.evaluate(() => window.shen.viz.clearHighlight());
        const without = await whitePixels(p);
        await p.evaluate((x) => { const { panel, ...c } = JSON.parse(x); window.shen.viz.setHighlight(JSON.stringify(c)); }, h);
        check(/"nodes":\[\d+\]/.test(h) && /"arcs":\[\[/.test(h) && withHl > without + 100 &&
          trace === await p.evaluate(() => window.shen.viz.traceHash()),
          `ankh step 1: node and arcs outlined (${withHl} vs ${without} bright grey pixels), trace hash untouched`);
      }
      ok = await playStep(p, name, n, kinds[i], check);
      if (!ok) break;
      if (name === 'cartouche' && n === 7) {
        // A prediction and its outcome, for the README.
        await p.evaluate(() => window.shen.viz.draw());
        await p.screenshot({ path: join(ROOT, 'wasm-viz/e2e/lesson.png') });
      }
      if (i + 1 < kinds.length) await p.click('#lessonnext');
    }
    check(ok && lit >= kinds.length - 1, `${name}: driven to its last step (${lit} of ${kinds.length} steps highlight something) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const inv = await p.evaluate(() => window.shen.summary().invariants.filter((i) => i.first_violation_us != null).map((i) => i.name));
    check(inv.length === 0, `${name}: no invariant violated during the lesson (${inv.join(', ') || 'none'})`);
    if (name === 'cartouche') {
      // The lesson's run replays to the same trace hash in a fresh page
      // without the lesson (highlights and reveals are view state).
      const [h, trace, t] = await p.evaluate(() => [window.shen.viz.urlHash(), window.shen.viz.traceHash(), window.shen.viz.timeMs()]);
      const q = await openPage(browser, url, h, errors);
      const qh = await q.evaluate((ms) => { window.shen.play(false); window.shen.viz.seek(ms); return window.shen.viz.traceHash(); }, t);
      check(qh === trace, `cartouche: the lesson's run replays to the same trace hash (${trace} = ${qh})`);
      await q.close();
      // ---- the challenge: two holders? Cut the ring in halves and ask
      // for the token on both sides.
      await p.click('#lessonnext');
      await p.waitForSelector('#challengedone', { timeout: 5000 });
      const u = ui(p);
      await p.click('#part');
      await u.advance(100);
      const groups = await p.evaluate(() => { const s = window.shen.summary(); return [s.nodes.find((x) => x.group === 0).id, s.nodes.find((x) => x.group === 1).id]; });
      for (const id of groups) {
        await u.clickNode(id);
        await p.click('#nodeinfo button:text("Request token")');
      }
      await u.advance(8000);
      await p.click('#challengedone');
      await p.waitForFunction(() => window.shen.lesson.verdict, null, { timeout: 20_000 });
      const v = await p.evaluate(() => window.shen.lesson.verdict);
      const text = await p.locator('#lessontext').innerText();
      check(!v.bad && /majority/.test(v.text) && text.includes(v.text.slice(0, 40)),
        `cartouche challenge refereed: "${v.text.slice(0, 140)}…"`);
    }
    if (name === 'ankh') {
      await p.click('#lessonnext');
      await p.waitForSelector('#challengedone', { timeout: 5000 });
      const u = ui(p);
      await p.click('#add');
      await u.advance(4000);
      await u.dblclickNode(2);
      await u.advance(12000);
      await p.click('#challengedone');
      await p.waitForFunction(() => window.shen.lesson.verdict, null, { timeout: 30_000 });
      const v = await p.evaluate(() => window.shen.lesson.verdict);
      check(!v.bad && /\(0 strays\)/.test(v.text) && /changed [2-9] time/.test(v.text), `ankh challenge refereed: "${v.text.slice(0, 140)}…"`);
    }
    if (name === 'sundial') {
      // Cut a node off, let it be declared dead, give up: the page heals
      // and the views converge.
      await p.click('#lessonnext');
      await p.waitForSelector('#challengedone', { timeout: 5000 });
      await p.fill('#groups', '2/0.1.3.4.5');
      await p.click('#partg');
      await ui(p).advance(5000);
      await p.click('#challengedone');
      await p.waitForFunction(() => window.shen.lesson.verdict, null, { timeout: 30_000 });
      const v = await p.evaluate(() => window.shen.lesson.verdict);
      const s = await p.evaluate(() => window.shen.summary());
      check(!v.bad && /declared dead [1-9]\d* time/.test(v.text) && /incarnation/.test(v.text) && !s.partitioned,
        `sundial challenge refereed: "${v.text.slice(0, 140)}…"`);
    }
    if (name === 'ouroboros') {
      // Append, crash the chain's head, give up: nothing acknowledged is lost.
      await p.click('#lessonnext');
      await p.waitForSelector('#challengedone', { timeout: 5000 });
      const u = ui(p);
      await p.click('#logburst');
      await u.advance(2000);
      const head = await p.evaluate(() => { const s = window.shen.summary(); return s.log.chains[window.shen.viz.logPartition()].chain[0]; });
      await u.dblclickNode(head);
      await u.advance(3000);
      await p.click('#challengedone');
      await p.waitForFunction(() => window.shen.lesson.verdict, null, { timeout: 30_000 });
      const v = await p.evaluate(() => window.shen.lesson.verdict);
      check(!v.bad && /acknowledged appends are in their tails' committed logs/.test(v.text) && /rebuilt [1-9]/.test(v.text),
        `ouroboros challenge refereed: "${v.text.slice(0, 140)}…"`);
    }
    // Every step from a link: its setup gives a world the step can show.
    const world = await p.evaluate((n) => ({ ankh: 'seed=11&nodes=6', sundial: 'seed=2&nodes=6', cartouche: 'seed=5&nodes=6', ouroboros: 'seed=4&nodes=5&rings=sundial,cartouche,ouroboros' })[n], name);
    const bad = [];
    for (let n = 1; n <= kinds.length; n++) {
      await p.evaluate((h) => { location.hash = h; }, `${world}&lesson=${name}&step=${n}`);
      const ok = await p.waitForFunction((i) => window.shen.lesson.ix === i && window.shen.lesson.name !== null, n - 1, { timeout: 10_000 }).then(() => true, () => false);
      const text = await p.locator('#lessontext').innerText();
      const opts = await p.locator('#lessonopts button').count();
      if (!ok || /cannot be shown|crash one first|No change of the ring yet|go on\./.test(text) || (kinds[n - 1] === 'predict' && opts < 2)) bad.push(`${n}: ${text.slice(0, 80)}`);
    }
    check(bad.length === 0, `${name}: every step opens from a link, set up (${bad.join(' | ') || `${kinds.length} steps`})`);
    await p.close();
  }

  // ---- teacher links: a mid-lesson step, set up from a fresh world
  {
    const p = await openPage(browser, url, 'lesson=cartouche&step=7', errors);
    await p.evaluate(() => window.shen.play(false));
    const at = await p.evaluate(() => ({ ix: window.shen.lesson.ix, name: window.shen.lesson.name, hash: location.hash, t: window.shen.viz.timeMs() }));
    check(at.name === 'cartouche' && at.ix === 6 && /^#seed=5&nodes=6&t=[\d.]+&lesson=cartouche&step=7$/.test(at.hash) && at.t >= 3000 &&
      await p.locator('#lessonopts button').count() === 2,
      `#lesson=cartouche&step=7 opens the lesson's world at step 7 (${at.hash})`);
    check(await playStep(p, 'cartouche', 7, 'predict', check), 'the linked step works');
    await p.close();
  }
  {
    // The page's own "Link to this step", at a step whose setup needs a
    // partition in force: the learner then heals it.
    const p = await openPage(browser, url, 'seed=2&nodes=6&lesson=sundial&step=8', errors);
    await p.evaluate(() => window.shen.play(false));
    const s = await p.evaluate(() => window.shen.summary());
    const link = await p.locator('#lessonlink').getAttribute('href');
    check(s.partitioned && s.nodes.some((n) => n.up && n.dead_votes > 0) && /#seed=2&nodes=6&lesson=sundial&step=8$/.test(link),
      `sundial step 8 from a link: set up with a node cut off and declared dead (link ${link.replace(/^.*#/, '#')})`);
    check(await playStep(p, 'sundial', 8, 'check', check), 'sundial step 8 from a link: healing passes its check');
    await p.close();
    // A link with a history replays it without the step's setup; a step
    // about a crashed node waits for one, then asks.
    const r = await openPage(browser, url, 'seed=11&nodes=6&t=3000&lesson=ankh&step=8', errors);
    await r.evaluate(() => window.shen.play(false));
    const before = [await r.locator('#lessonopts button').count(), await r.locator('#lessontext').innerText()];
    await ui(r).dblclickNode(3);
    await ui(r).advance(200);
    const appeared = await r.waitForFunction(() => document.querySelectorAll('#lessonopts button').length === 3, null, { timeout: 10_000 }).then(() => true, () => false);
    check(before[0] === 0 && /crash one first/.test(before[1]) && appeared && await r.evaluate(() => window.shen.lesson.ctx.victim) === 3,
      'ankh step 8 opened on a run with no crash waits for one, then asks about the crashed node');
    await r.close();
    const q = await openPage(browser, url, 'seed=2&nodes=6&lesson=sundial&step=99', errors);
    check(/lesson sundial has steps 1 to 10/.test(await q.locator('#error').innerText()) && await q.evaluate(() => window.shen.lesson.name) === null,
      'a link to a step that does not exist is refused with a message');
    errors.splice(0, errors.length, ...errors.filter((e) => !/has steps 1 to/.test(e)));
    await q.close();
  }
}
