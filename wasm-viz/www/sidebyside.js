// Side by side: two worlds of one seed and fault script that differ in one
// setting (#sbs=SETTING:A/B&seed=...), run in lockstep, their key figures
// next to each other. Every action goes to both worlds at the same virtual
// time (a fault at a millisecond free in both), so each world's script is
// the same and replays, from its own single-world hash, to the same trace
// hash. All simulation lives in Rust (two Viz objects); this file only
// forwards clicks and shows the figures.
//
// Hook for tests: window.shenSbs = { active, a, b, info, figures(),
// describe(hash), hash(), act(op), open(hash), play(on), seek(ms) }.
import { Viz } from './pkg/shen_wasm_viz.js';

const $ = (id) => document.getElementById(id);
export const isSideBySide = (hash) => /(^|&)sbs=/.test(hash.replace(/^#/, ''));

const sbs = {
  active: false,
  a: null,
  b: null,
  info: null,
  hash0: '',
  playing: true,
  speed: 0.25,
  lastT: null,
  frame: 0,
};

const LABEL = {
  vnodes: 'Ankh virtual nodes per node',
  fanout: 'Sundial gossip fanout',
  phi: 'Sundial phi threshold',
  lat: 'mean latency (ms)',
  bypass: 'Ouroboros chain bypass',
  shortcut: 'Cartouche Want shortcut',
};

function note(text, bad) {
  const el = $('sbsnote');
  el.textContent = text;
  el.className = bad ? 'bad' : '';
  if (bad && !sbs.active) {
    // The pair did not open: say so where the one-world page shows errors.
    const box = $('error');
    box.classList.remove('note');
    box.textContent = text;
    box.hidden = false;
    console.warn(`shen: ${text}`);
  }
}

function fitOne(v, canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth));
  const h = Math.max(1, Math.round(canvas.clientHeight));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  v.setPixelRatio(dpr);
  v.resize(w, h);
}

function fit() {
  if (!sbs.active) return;
  fitOne(sbs.a, $('sbsa'));
  fitOne(sbs.b, $('sbsb'));
}

function free() {
  for (const k of ['a', 'b']) {
    if (sbs[k]) { sbs[k].free(); sbs[k] = null; }
  }
}

// Open the pair a side-by-side hash names; on a bad hash, say why and keep
// what was open.
function open(hash) {
  let info;
  let a;
  let b;
  try {
    info = JSON.parse(Viz.sideBySide(hash));
    a = Viz.fromHash(info.hashes[0]);
    b = Viz.fromHash(info.hashes[1]);
  } catch (e) {
    if (a) a.free();
    note(`bad side-by-side link: ${e.message}`, true);
    return false;
  }
  free();
  Object.assign(sbs, { a, b, info, hash0: hash.replace(/^#/, ''), lastT: null });
  a.attach($('sbsa'));
  b.attach($('sbsb'));
  sbs.active = true;
  document.body.classList.add('sbs');
  $('sbsview').hidden = false;
  $('sbstitle').textContent = `${LABEL[info.setting] || info.setting}: ${info.values[0]} vs ${info.values[1]}`;
  $('sbsla').textContent = `A: ${info.setting} = ${info.values[0]}`;
  $('sbslb').textContent = `B: ${info.setting} = ${info.values[1]}`;
  $('sbsopena').href = `#${info.hashes[0]}`;
  $('sbsopenb').href = `#${info.hashes[1]}`;
  fit();
  note('');
  refresh();
  return true;
}

function close() {
  free();
  sbs.active = false;
  document.body.classList.remove('sbs');
  $('sbsview').hidden = true;
}

// The pair's hash now: the shared script, the time.
function pairHash() {
  return Viz.sideBySideHash(sbs.hash0, sbs.a.script(), sbs.a.timeMs());
}

function remember() {
  history.replaceState(null, '', '#' + pairHash());
}

// The first whole millisecond from now free in both worlds.
function slotBoth() {
  let at = sbs.a.faultSlot(0);
  for (let i = 0; i < 1000; i++) {
    const b = sbs.b.faultSlot(at);
    const a = sbs.a.faultSlot(b);
    if (a === at) return at;
    at = a;
  }
  throw new Error('no millisecond free in both worlds');
}

const IMMEDIATE = new Set(['add', 'req']);

// Apply `op` (`crash:3`, `heal`, `add`, `req:2`, ...) to both worlds at
// the same virtual time. If world B refuses what A took, the pair reopens
// where it was, so the two scripts never differ.
function act(op) {
  if (!sbs.active) return undefined;
  const before = pairHash();
  const kind = op.split(':')[0];
  const atUs = IMMEDIATE.has(kind) ? Math.round(sbs.a.timeMs() * 1000) : Math.round(slotBoth() * 1000);
  const item = `${atUs}:${op}`;
  let done;
  try {
    done = sbs.a.actAt(item);
  } catch (e) {
    note(e.message, true);
    return undefined;
  }
  try {
    sbs.b.actAt(item);
  } catch (e) {
    open(before);
    note(`world B refused ${op}: ${e.message}`, true);
    return undefined;
  }
  remember();
  refresh();
  note(`both worlds: ${done}`);
  return done;
}

function seekBoth(ms) {
  sbs.a.seek(ms);
  sbs.b.seek(ms);
}

// ------------------------------------------------------------ figures
const ms = (x) => (x == null ? '—' : `${x.toFixed(0)} ms`);
const ROWS = [
  ['trace hash', (f) => f.trace_hash],
  ['views converged now', (f) => (f.converged ? 'yes' : 'no')],
  ['last convergence', (f) => (f.convergence_ms == null ? '—'
    : `${ms(f.convergence_ms)} (${f.convergence_rounds == null ? '?' : f.convergence_rounds.toFixed(1)} gossip rounds)`)],
  ['last crash', (f) => (f.detection ? `node ${f.detection.node} at ${(f.detection.crashed_us / 1000).toFixed(0)} ms` : '—')],
  ['  suspected after', (f) => ms(f.suspected_after_ms)],
  ['  declared dead after', (f) => ms(f.dead_after_ms)],
  ['Sundial suspicions', (f) => String(f.suspicions)],
  ['token acquisitions', (f) => String(f.acquisitions)],
  ['  mean wait for the token', (f) => ms(f.grant_wait_ms)],
  ['  idle tokens sent straight to a requester', (f) => String(f.shortcuts)],
  ['tokens regenerated', (f) => String(f.regenerations)],
  ['keys moved at the last ring change', (f) => (f.keys_moved == null ? '—'
    : `${f.keys_moved} of ${f.keys_sampled} (ideal ${f.keys_ideal.toFixed(1)})`)],
  ['messages sent', (f) => String(f.messages)],
];

function figures() {
  return [JSON.parse(sbs.a.figuresJson()), JSON.parse(sbs.b.figuresJson())];
}

function refresh() {
  if (!sbs.active) return;
  const [fa, fb] = figures();
  const body = $('sbsfig');
  body.textContent = '';
  for (const [name, f] of ROWS) {
    const tr = document.createElement('tr');
    const [va, vb] = [f(fa), f(fb)];
    if (va !== vb) tr.className = 'differs';
    for (const text of [name, va, vb]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  $('sbsclock').textContent = `t = ${(fa.time_us / 1e6).toFixed(3)} s`;
  const scrub = $('sbsscrub');
  scrub.max = String(Math.floor(Math.max(sbs.a.horizonMs(), sbs.b.horizonMs())));
  if (document.activeElement !== scrub) scrub.value = String(Math.floor(sbs.a.timeMs()));
}

// ------------------------------------------------------------ the loop
function tick(t) {
  if (sbs.active) {
    try {
      if (sbs.playing && sbs.lastT !== null) {
        const dt = Math.min(t - sbs.lastT, 100) * sbs.speed;
        seekBoth(sbs.a.timeMs() + dt);
      }
      sbs.a.draw();
      sbs.b.draw();
      if (sbs.frame % 6 === 0) refresh();
    } catch (e) {
      sbs.playing = false;
      note(e.message, true);
    }
    sbs.frame++;
  }
  sbs.lastT = t;
  requestAnimationFrame(tick);
}

function setPlaying(on) {
  sbs.playing = on;
  $('sbsplay').textContent = on ? 'Pause' : 'Play';
}

function canvasNode(v, canvas, e) {
  const r = canvas.getBoundingClientRect();
  return v.nodeAt(e.clientX - r.left - canvas.clientLeft, e.clientY - r.top - canvas.clientTop);
}

function lowestUp() {
  const s = JSON.parse(sbs.a.summaryJson());
  const n = s.nodes.find((x) => x.up);
  if (!n) throw new Error('no node is running');
  return n.id;
}

function wire() {
  $('sbsplay').onclick = () => setPlaying(!sbs.playing);
  $('sbsspeed').onchange = (e) => { sbs.speed = Number(e.target.value); };
  $('sbsfwd').onclick = () => { setPlaying(false); seekBoth(sbs.a.timeMs() + 100); remember(); refresh(); };
  $('sbsscrub').oninput = (e) => { seekBoth(Number(e.target.value)); remember(); refresh(); };
  $('sbsadd').onclick = () => act('add');
  $('sbsheal').onclick = () => act('heal');
  $('sbspart').onclick = () => {
    const n = sbs.a.nodeCount();
    const ids = [...Array(n).keys()];
    const h = Math.ceil(n / 2);
    if (n < 2) { note('a partition needs two nodes', true); return; }
    act(`part:${ids.slice(0, h).join('.')}/${ids.slice(h).join('.')}`);
  };
  $('sbsreq').onclick = () => { try { act(`req:${lowestUp()}`); } catch (e) { note(e.message, true); } };
  $('sbsshare').onclick = () => {
    remember();
    navigator.clipboard?.writeText(location.href).catch(() => {});
    note('link copied: it opens both worlds here, at this time');
  };
  $('sbsclose').onclick = () => { location.hash = sbs.info ? sbs.info.hashes[0] : ''; };
  for (const [id, k] of [['sbsa', 'a'], ['sbsb', 'b']]) {
    const c = $(id);
    c.ondblclick = (e) => {
      const n = canvasNode(sbs[k], c, e);
      if (n < 0) return;
      const s = JSON.parse(sbs[k].summaryJson());
      act(`${s.nodes[n].up ? 'crash' : 'restart'}:${n}`);
    };
    new ResizeObserver(fit).observe(c);
  }
  $('sbsopen').onclick = () => {
    const setting = $('sbssetting').value;
    const [va, vb] = $('sbsvalues').value.split('/').map((x) => x.trim());
    const base = location.hash.replace(/^#/, '').split('&')
      .filter((p) => p && !/^(sbs|lesson|step|live|faults|t)=/.test(p) && !p.startsWith(`${setting}=`)).join('&');
    location.hash = `sbs=${setting}:${va}/${vb}${base ? '&' + base : ''}`;
  };
  // Keys while the pair is open: space plays/pauses, → moves both 100 ms
  // on, ← 100 ms back (shift: 1 s).
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (!sbs.active || e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT') && t.type !== 'range') return;
    const step = e.shiftKey ? 1000 : 100;
    if (e.key === ' ') setPlaying(!sbs.playing);
    else if (e.key === 'ArrowRight') { setPlaying(false); seekBoth(sbs.a.timeMs() + step); remember(); refresh(); }
    else if (e.key === 'ArrowLeft') { setPlaying(false); seekBoth(Math.max(0, sbs.a.timeMs() - step)); remember(); refresh(); }
    else return;
    e.preventDefault();
  });
  window.addEventListener('hashchange', () => {
    if (isSideBySide(location.hash)) {
      if (!sbs.active || location.hash.slice(1) !== pairHash()) open(location.hash);
    } else if (sbs.active) {
      close();
    }
  });
}

// Wait for app.js to load the module (one instance for both files).
for (let i = 0; i < 600 && !window.shenWasm; i++) await new Promise((r) => setTimeout(r, 50));
await window.shenWasm;
window.shenSbs = {
  get active() { return sbs.active; },
  get a() { return sbs.a; },
  get b() { return sbs.b; },
  get info() { return sbs.info; },
  figures,
  describe: (h) => JSON.parse(Viz.sideBySide(h)),
  hash: () => pairHash(),
  act,
  open,
  play: setPlaying,
  seek: (t) => { seekBoth(t); remember(); refresh(); },
};
wire();
if (isSideBySide(location.hash)) open(location.hash);
requestAnimationFrame(tick);
