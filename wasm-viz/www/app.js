// The page: a requestAnimationFrame loop that advances the Rust world and
// has Rust paint it on the canvas (web-sys), plus the DOM controls, the
// invariants panel, the inspector and the lessons. All simulation state
// lives in Rust; this file only forwards clicks and shows JSON.
//
// Hooks for tests and benches (window.shen):
//   shen.viz          the Viz (wasm-bindgen object)
//   shen.state()      full state (JSON.parse of viz.stateJson())
//   shen.summary()    state without views/ranges/messages
//   shen.play(bool)   start/stop the clock
//   shen.bench(opts)  frame times for a big world (see bench())
//   shen.ready        true once the first frame is drawn
import init, { Viz } from './pkg/shen_wasm_viz.js';

const $ = (id) => document.getElementById(id);
const canvas = $('canvas');
let viz;
let playing = true;
let speed = 0.25;
let selected = -1;
let frame = 0;
let lastT = null;
let benchRunning = false;
let actualSpeed = 0.25;
const FRAME_BUDGET_MS = 20;

function showError(e) {
  const box = $('error');
  box.textContent = String(e && e.message ? e.message : e);
  console.error(`shen: ${box.textContent}`);
  box.hidden = false;
  setTimeout(() => { box.hidden = true; }, 6000);
}

// Run a user action; errors (a crashed node asked for the token, ...) are
// shown, never thrown at the loop.
function act(f) {
  try {
    const r = f();
    history.replaceState(null, '', '#' + viz.urlHash());
    refreshPanels(true);
    return r;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

function makeViz() {
  const hash = location.hash.slice(1);
  try {
    return Viz.fromHash(hash);
  } catch (e) {
    showError(`bad link (${e.message}); starting the default world`);
    return Viz.fromHash('');
  }
}

// ------------------------------------------------------------ the loop
function tick(t) {
  if (!benchRunning) {
    if (lastT !== null && playing) {
      const dt = Math.min(t - lastT, 100);
      try {
        // At most FRAME_BUDGET_MS of simulation per frame: a world too big
        // to simulate at this speed slows down, the frame rate does not.
        const done = viz.advance(dt * speed, FRAME_BUDGET_MS);
        actualSpeed = 0.9 * actualSpeed + 0.1 * (done / dt);
      } catch (e) {
        playing = false;
        showError(e);
      }
    }
    lastT = t;
    viz.draw();
    if (frame % 6 === 0) refreshPanels(false);
    frame++;
    window.shen.ready = true;
  }
  requestAnimationFrame(tick);
}

// ------------------------------------------------------------ panels
const fmt = (us) => (us / 1e6).toFixed(3) + ' s';

function refreshPanels(full) {
  const s = JSON.parse(viz.summaryJson());
  $('clock').textContent = `t = ${fmt(s.time_us)}` +
    (playing && actualSpeed < speed * 0.9 ? ` (running at ${actualSpeed.toFixed(2)}×: CPU-bound)` : '');
  $('hash').textContent = `trace ${s.trace_hash}`;
  const scrub = $('scrub');
  scrub.max = String(Math.floor(s.horizon_us / 1000));
  if (document.activeElement !== scrub) scrub.value = String(Math.floor(s.time_us / 1000));
  const marks = $('marks');
  marks.textContent = '';
  for (const inv of s.invariants) {
    if (inv.first_violation_us != null && s.horizon_us > 0) {
      const m = document.createElement('span');
      m.style.left = `${(inv.first_violation_us / s.horizon_us) * 100}%`;
      m.title = `${inv.name} first violated at ${fmt(inv.first_violation_us)}`;
      marks.appendChild(m);
    }
  }
  const list = $('invlist');
  list.textContent = '';
  for (const inv of s.invariants) {
    const li = document.createElement('li');
    li.className = inv.state;
    let text = `${inv.name.replaceAll('_', ' ')}: ${inv.state}`;
    if (inv.detail) text += ` (${inv.detail})`;
    if (inv.first_violation_us != null) text += ` — first violated at ${fmt(inv.first_violation_us)}`;
    li.textContent = text;
    if (inv.first_violation_us != null) {
      li.classList.add('violated');
      li.onclick = () => act(() => viz.seek(inv.first_violation_us / 1000));
    }
    list.appendChild(li);
  }
  if (selected >= 0 && (full || frame % 30 === 0)) inspect(selected);
  lessonCheck(s);
}

function inspect(id) {
  const n = JSON.parse(viz.stateJson()).nodes[id];
  if (!n) return;
  const box = $('nodeinfo');
  box.textContent = '';
  const p = document.createElement('pre');
  const view = n.view ? `alive ${JSON.stringify(n.view.alive)}\nsuspect ${JSON.stringify(n.view.suspect)}\ndead ${JSON.stringify(n.view.dead)}` : '';
  const phi = (n.phi || []).map(([m, v]) => `${m}: ${v.toFixed(2)}`).join(', ');
  p.textContent = `node ${n.id} — ${n.up ? 'running' : 'CRASHED'} (incarnation ${n.incarnation})\n` +
    `declared dead by ${n.dead_votes}, suspected by ${n.suspect_votes}, alive for ${n.alive_votes}\n` +
    `max phi of its monitors: ${n.max_phi.toFixed(2)}\n` +
    `ring share: ${(n.share * 100).toFixed(1)}%\n` +
    `token: ${n.has_token ? 'rests here' : '-'}; grant: ${n.grant ? `fencing (${n.grant[1]}, ${n.grant[2]})` : '-'}; pending requests: ${n.pending}\n` +
    `its view (hash ${n.view_hash.toString(16)}):\n${view}\nphi it computes: ${phi || '-'}`;
  box.appendChild(p);
  const b1 = document.createElement('button');
  b1.textContent = n.up ? 'Crash' : 'Restart';
  b1.onclick = () => act(() => viz.toggle(id));
  const b2 = document.createElement('button');
  b2.textContent = 'Request token';
  b2.onclick = () => act(() => viz.request(id));
  box.append(b1, ' ', b2);
}

// ------------------------------------------------------------ lessons
// Each step: what to read, and (optionally) a check that the learner made
// it happen; `base` is the summary when the step began.
const ev = (s, name) => s.events[name] || 0;
const LESSONS = {
  ankh: [
    { text: 'Ankh Ring places keys by hashing. Each node owns the arcs (in its colour) ending at its virtual nodes. Add a node.',
      check: (s, b) => s.nodes.length > b.nodes.length },
    { text: 'Its arcs appeared: it took small ranges from several nodes, not half of one. Now crash a node (double-click it) and wait until the others declare it dead.',
      check: (s, b) => s.ankh && s.ankh.members.length < b.ankh.members.length },
    { text: 'Done: the dead node\'s ranges went to the next vnodes clockwise — only its keys moved. Every node computes this from its own Sundial view.' },
  ],
  sundial: [
    { text: 'Sundial gossips (blue dots) and each node probes its 3 predecessors on the circle. Make the cluster suspect a healthy node: cut the network (Partition) or raise the loss.',
      check: (s) => s.nodes.some((n) => n.up && n.suspect_votes + n.dead_votes > 0) },
    { text: 'Phi rose past the threshold at its monitors (red), so they suspect it. Heal the network (and set loss back to 0): the node refutes by raising its incarnation.',
      check: (s, b) => !s.partitioned && s.loss === 0 && ev(s, 'sundial.refuted') > ev(b, 'sundial.refuted') },
    { text: 'It refuted. Now crash a node for real and watch: phi climbs, suspicion, then every node declares it dead.',
      check: (s) => s.nodes.some((n) => !n.up && n.declared_dead) },
    { text: 'Done: independent suspectors shorten the wait (400 ms with agreement, up to 10 s for one).' },
  ],
  cartouche: [
    { text: 'Cartouche passes one token clockwise (big gold dot; gold ring where it rests). Select a node and press "Request token".',
      check: (s, b) => ev(s, 'cartouche.granted') > ev(b, 'cartouche.granted') },
    { text: 'A grant needed a majority to confirm its fencing number. Now lose the token: crash the node where it rests (gold ring).',
      check: (s, b) => ev(s, 'cartouche.regenerated') > ev(b, 'cartouche.regenerated') },
    { text: 'Done: after the loss timeout a node asked a majority to promise a new generation and created a new token with a higher fencing number. A minority side of a partition can never do that.' },
  ],
};
let lesson = null;
let stepIx = 0;
let base = null;

function lessonShow() {
  const steps = LESSONS[lesson];
  const st = steps[stepIx];
  $('lessontext').innerHTML = '';
  const p = document.createElement('p');
  p.textContent = `${stepIx + 1}/${steps.length}. ${st.text}`;
  $('lessontext').appendChild(p);
  $('lessonnav').style.display = 'flex';
  $('lessonnext').disabled = !!st.check && !st.passed;
}

function lessonStart(name) {
  lesson = name;
  stepIx = 0;
  base = JSON.parse(viz.summaryJson());
  for (const st of LESSONS[name]) st.passed = false;
  lessonShow();
}

function lessonCheck(s) {
  if (!lesson) return;
  const st = LESSONS[lesson][stepIx];
  if (st.check && !st.passed && st.check(s, base)) {
    st.passed = true;
    const ok = document.createElement('p');
    ok.className = 'done';
    ok.textContent = 'You did it.';
    $('lessontext').appendChild(ok);
    $('lessonnext').disabled = false;
  }
}

// ------------------------------------------------------------ bench
// Frame times of a world of `nodes` nodes, measured over `frames` animation
// frames: work = advance + draw in one frame; interval = time between
// frames (what the user sees).
async function bench({ nodes = 500, frames = 240, speed: sp = 0.25, seed = '1', warmup_ms = 2000,
  budget_ms = FRAME_BUDGET_MS } = {}) {
  const wall0 = performance.now();
  benchRunning = true;
  const old = viz;
  const b = new Viz(String(seed), nodes);
  b.attach(canvas);
  b.advance(warmup_ms, 0);
  const v0 = b.timeMs();
  const wall1 = performance.now();
  const work = [];
  const gaps = [];
  let prev = null;
  await new Promise((done) => {
    const f = (t) => {
      const t0 = performance.now();
      if (prev !== null) {
        b.advance(Math.min(t - prev, 100) * sp, budget_ms);
        gaps.push(t - prev);
      }
      b.draw();
      work.push(performance.now() - t0);
      prev = t;
      if (work.length >= frames) done(); else requestAnimationFrame(f);
    };
    requestAnimationFrame(f);
  });
  const sorted = (a) => [...a].sort((x, y) => x - y);
  const pct = (a, q) => sorted(a)[Math.min(a.length - 1, Math.floor(q * a.length))];
  const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
  const result = {
    nodes, frames, speed: sp,
    budget_ms,
    warmup_ms,
    virtual_ms: b.timeMs() - v0,
    virtual_speed: (b.timeMs() - v0) / (performance.now() - wall1),
    warmup_wall_ms: wall1 - wall0,
    work_mean_ms: mean(work), work_p95_ms: pct(work, 0.95), work_max_ms: Math.max(...work),
    interval_mean_ms: mean(gaps), interval_p95_ms: pct(gaps, 0.95),
    fps: 1000 / mean(gaps),
    fps_if_work_bound: 1000 / Math.max(mean(work), 1e-3),
  };
  b.free();
  viz = old;
  viz.attach(canvas);
  benchRunning = false;
  return result;
}

// ------------------------------------------------------------ wiring
function wire() {
  $('play').onclick = () => { playing = !playing; $('play').textContent = playing ? 'Pause' : 'Play'; };
  $('step').onclick = () => { playing = false; $('play').textContent = 'Play'; act(() => viz.step()); };
  $('speed').onchange = (e) => { speed = Number(e.target.value); };
  $('add').onclick = () => act(() => viz.addNode());
  $('part').onclick = () => act(() => viz.partitionHalves());
  $('partg').onclick = () => act(() => viz.partition($('groups').value));
  $('heal').onclick = () => act(() => viz.heal());
  $('droptoken').onclick = () => act(() => viz.dropToken());
  $('dropmsg').onclick = () => act(() => {
    const now = viz.timeMs() * 1000;
    const m = JSON.parse(viz.stateJson()).messages.find((x) => x.arrives_us && x.arrives_us > now + 2000);
    if (!m) throw new Error('no message in flight that arrives later than the next millisecond');
    return viz.dropMessage(m.id);
  });
  $('loss').onchange = (e) => act(() => viz.setLoss(Number(e.target.value)));
  $('loss').oninput = (e) => { $('lossv').textContent = e.target.value; };
  $('lat').onchange = (e) => act(() => viz.setLatency(Number(e.target.value)));
  $('lat').oninput = (e) => { $('latv').textContent = e.target.value; };
  $('scrub').oninput = (e) => act(() => viz.seek(Number(e.target.value)));
  $('share').onclick = () => {
    history.replaceState(null, '', '#' + viz.urlHash());
    navigator.clipboard?.writeText(location.href).catch(() => {});
  };
  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  canvas.onclick = (e) => {
    selected = viz.nodeAt(...pos(e));
    viz.select(selected);
    if (selected >= 0) inspect(selected);
  };
  canvas.ondblclick = (e) => {
    const id = viz.nodeAt(...pos(e));
    if (id >= 0) act(() => viz.toggle(id));
  };
  for (const b of document.querySelectorAll('#lessonpick button')) {
    b.onclick = () => lessonStart(b.dataset.lesson);
  }
  $('lessonnext').onclick = () => {
    if (stepIx + 1 < LESSONS[lesson].length) {
      stepIx++;
      base = JSON.parse(viz.summaryJson());
      lessonShow();
    }
  };
  $('lessonback').onclick = () => {
    if (stepIx > 0) { stepIx--; base = JSON.parse(viz.summaryJson()); lessonShow(); }
  };
  window.addEventListener('hashchange', () => {
    if ('#' + viz.urlHash() === location.hash) return;
    viz.free();
    viz = makeViz();
    viz.attach(canvas);
    window.shen.viz = viz;
  });
}

await init();
viz = makeViz();
viz.attach(canvas);
window.shen = {
  get viz() { return viz; },
  set viz(v) { viz = v; },
  state: () => JSON.parse(viz.stateJson()),
  summary: () => JSON.parse(viz.summaryJson()),
  play: (on) => { playing = !!on; $('play').textContent = playing ? 'Pause' : 'Play'; },
  bench,
  ready: false,
};
wire();
requestAnimationFrame(tick);
