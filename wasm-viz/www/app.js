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
//   shen.live         live mode: { state(), status, error } (null when off)
//   shen.inspected    the message last shown by the inspector (JSON), or null
//   shen.exportRun()  the run as the JSON text Export run saves
//   shen.importRun(t) open a run from that text (resolves to the check message)
import init, { Live, Viz } from './pkg/shen_wasm_viz.js';

const $ = (id) => document.getElementById(id);
const canvas = $('canvas');
const stCanvas = $('spacetime');
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
  box.classList.remove('note');
  box.textContent = String(e && e.message ? e.message : e);
  console.error(`shen: ${box.textContent}`);
  box.hidden = false;
  setTimeout(() => { box.hidden = true; }, 6000);
}

function showNote(text) {
  const box = $('error');
  box.textContent = text;
  box.classList.add('note');
  box.hidden = false;
  setTimeout(() => { box.hidden = true; box.classList.remove('note'); }, 5000);
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
  if (liveAddrOf(hash) !== null) return Viz.fromHash('');
  try {
    return Viz.fromHash(hash);
  } catch (e) {
    showError(`bad link (${e.message}); starting the default world`);
    return Viz.fromHash('');
  }
}

// ------------------------------------------------------------ live mode
// A running `shen run` node's admin API: /status polled every second,
// /events followed with EventSource; drawn by Rust (Live) on the canvas.
let live = null;
const ADDR_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

// The `live=` value of a URL hash, or null when there is none.
function liveAddrOf(hash) {
  const m = /(?:^|&)live=([^&]*)/.exec(hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function liveMessage(text, cls) {
  const el = $('livestatus');
  el.textContent = text;
  el.className = cls || '';
  if (live) live.message = text;
}

function stopLive() {
  if (!live) return;
  live.es?.close();
  clearInterval(live.timer);
  live.view.free();
  live = null;
  window.shen.live = null;
  document.body.classList.remove('live');
  $('livestop').hidden = true;
  $('livefork').hidden = true;
  $('liveevents').textContent = '';
  viz.attach(canvas);
  fitCanvas();
}

function startLive(addr) {
  stopLive();
  addr = String(addr).trim();
  const m = ADDR_RE.exec(addr);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    const msg = `bad live address \`${addr}\`: want HOST:PORT, e.g. 127.0.0.1:7600 (a \`shen run\` node's admin address)`;
    liveMessage(msg, 'bad');
    showError(msg);
    return false;
  }
  const base = `http://${addr}`;
  live = { addr, view: new Live(canvas), es: null, timer: 0, ok: false, message: '', statusAt: 0, events: 0 };
  const me = live;
  window.shen.live = {
    state: () => JSON.parse(me.view.stateJson()),
    get message() { return me.message; },
    get ok() { return me.ok; },
  };
  document.body.classList.add('live');
  playing = false;
  $('play').textContent = 'Play';
  $('liveaddr').value = addr;
  $('livestop').hidden = false;
  liveMessage(`connecting to ${base} ...`);
  const poll = async () => {
    try {
      const r = await fetch(`${base}/status`, { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status} ${r.statusText}`);
      const text = await r.text();
      if (live !== me) return;
      me.view.setStatus(text);
      const st = JSON.parse(me.view.stateJson()).status;
      me.ok = true;
      me.statusAt = performance.now();
      $('livefork').hidden = false;
      liveMessage(`live: ${base} — ${st.members.length} members, health ${st.health || '?'}` +
        `${st.chains.length ? `, log of ${st.chains.length} partitions` : ''}; ${me.events} events`, 'good');
    } catch (e) {
      if (live !== me) return;
      me.ok = false;
      liveMessage(`cannot read ${base}/status: ${e.message || e}. Is \`shen run\` running with its admin API ` +
        `on ${addr}, and does it allow this page's origin (${location.origin})? Retrying every second.`, 'bad');
    }
  };
  poll();
  me.timer = setInterval(poll, 1000);
  try {
    me.es = new EventSource(`${base}/events`);
    me.es.onmessage = (e) => {
      if (live !== me) return;
      try {
        const name = me.view.pushEvent(e.data, performance.now());
        me.events++;
        const li = document.createElement('li');
        li.textContent = name;
        const list = $('liveevents');
        list.prepend(li);
        while (list.children.length > 12) list.lastChild.remove();
      } catch (err) {
        console.warn(`shen live: ${err.message}`);
      }
    };
    me.es.onerror = () => {
      if (live === me && me.ok) liveMessage(`live: ${base} — event stream interrupted, reconnecting`, 'bad');
    };
  } catch (e) {
    liveMessage(`cannot open ${base}/events: ${e.message || e}`, 'bad');
  }
  return true;
}

function forkLive() {
  if (!live) return;
  try {
    const hash = live.view.forkHash(String(Math.floor(Math.random() * 1e9)));
    stopLive();
    location.hash = hash;
  } catch (e) {
    showError(e);
  }
}

// ------------------------------------------------------------ canvas size
// The canvas fills its box; its backing store is devicePixelRatio times
// bigger so it is sharp on HiDPI screens. Rust works in CSS pixels.
function fitCanvas() {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth));
  const h = Math.max(1, Math.round(canvas.clientHeight));
  const bw = Math.round(w * dpr);
  const bh = Math.round(h * dpr);
  if (canvas.width !== bw || canvas.height !== bh) {
    canvas.width = bw;
    canvas.height = bh;
  }
  viz.setPixelRatio(dpr);
  viz.resize(w, h);
  fitSpacetime(viz);
}

// The space-time canvas, sized like the ring's (CSS pixels in Rust).
function fitSpacetime(v) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(stCanvas.clientWidth));
  const h = Math.max(1, Math.round(stCanvas.clientHeight));
  if (stCanvas.width !== Math.round(w * dpr) || stCanvas.height !== Math.round(h * dpr)) {
    stCanvas.width = Math.round(w * dpr);
    stCanvas.height = Math.round(h * dpr);
  }
  v.attachSpacetime(stCanvas, w, h);
}

// A canvas point (CSS pixels) from a mouse event.
function canvasPoint(e) {
  const r = canvas.getBoundingClientRect();
  return [e.clientX - r.left - canvas.clientLeft, e.clientY - r.top - canvas.clientTop];
}

// ------------------------------------------------------------ messages
// Hover shows a message in the tooltip; a click keeps it in the Message
// panel (and rings it on the canvas) until it arrives.
let pinned = -1;
let pinnedLast = null;
const usText = (us) => `${(us / 1000).toFixed(1)} ms`;

function messageHtml(m, el) {
  el.textContent = '';
  const head = document.createElement('div');
  const b = document.createElement('b');
  b.textContent = `${m.ring} · ${m.kind}`;
  head.append(b, ` — node ${m.from} → node ${m.to}`);
  const why = document.createElement('div');
  why.className = 'why';
  why.textContent = m.why;
  const f = document.createElement('div');
  f.textContent = m.fields;
  const t = document.createElement('div');
  t.textContent = `sent ${usText(m.sent_us)}, ` +
    (m.arrives_us != null ? `arrives ${usText(m.arrives_us)}` : 'held on a cut link') +
    ` · ${m.bytes} bytes · message ${m.id}`;
  el.append(head, why, f, t);
}

function showTip(e) {
  const tip = $('tip');
  if (live || !viz) { tip.hidden = true; return; }
  const [x, y] = canvasPoint(e);
  const id = viz.nodeAt(x, y) >= 0 ? -1 : viz.messageAt(x, y, 6);
  if (id < 0) { tip.hidden = true; return; }
  const m = JSON.parse(viz.messageJson(id));
  if (!m) { tip.hidden = true; return; }
  messageHtml(m, tip);
  tip.hidden = false;
  const wrap = $('canvaswrap').getBoundingClientRect();
  const left = Math.min(x + 14, wrap.width - tip.offsetWidth - 4);
  tip.style.left = `${Math.max(0, left)}px`;
  tip.style.top = `${y + 14}px`;
}

function pinMessage(id) {
  pinned = id;
  viz.selectMessage(id);
  refreshMessage();
}

function refreshMessage() {
  const box = $('msginfo');
  if (pinned < 0) return;
  const m = JSON.parse(viz.messageJson(pinned));
  if (m) {
    pinnedLast = m;
    window.shen.inspected = m;
    messageHtml(m, box);
  } else if (pinnedLast && pinnedLast.id === pinned) {
    messageHtml(pinnedLast, box);
    const gone = document.createElement('div');
    gone.className = 'gone';
    gone.textContent = 'no longer in flight (delivered or dropped)';
    box.append(gone);
    pinned = -1;
  }
}

// Per-ring and per-kind checkboxes; unticked ones are not drawn.
function buildFilters() {
  const list = $('filterlist');
  list.textContent = '';
  const kinds = JSON.parse(Viz.messageKinds());
  const rings = [...new Set(kinds.map((k) => k.ring))].filter((r) => r !== 'relay');
  for (const r of rings) {
    const fs = document.createElement('fieldset');
    const lg = document.createElement('legend');
    const all = document.createElement('input');
    all.type = 'checkbox';
    all.checked = true;
    all.dataset.ring = r;
    lg.append(all, ` ${r}`);
    fs.append(lg);
    for (const k of kinds.filter((x) => x.ring === r)) {
      const l = document.createElement('label');
      const c = document.createElement('input');
      c.type = 'checkbox';
      c.checked = true;
      c.dataset.kind = `${r}.${k.kind}`;
      l.title = k.why.replaceAll('{from}', 'A').replaceAll('{to}', 'B');
      l.append(c, ` ${k.kind}`);
      fs.append(l);
    }
    list.append(fs);
  }
  list.onchange = applyFilters;
}

function applyFilters() {
  const off = (sel, key) => [...document.querySelectorAll(sel)].filter((c) => !c.checked).map((c) => c.dataset[key]);
  viz.setFilter(off('#filterlist input[data-ring]', 'ring').join(','), off('#filterlist input[data-kind]', 'kind').join(','));
  viz.setKeys($('showkeys').checked);
  keysKey = '';
}

// ------------------------------------------------------------ space-time
// Hover an arrow: what it was; click: keep it in the Message panel (and
// ring it on both views); drag: scrub the timeline (right = later).
const stPoint = (e) => {
  const r = stCanvas.getBoundingClientRect();
  return [e.clientX - r.left - stCanvas.clientLeft, e.clientY - r.top - stCanvas.clientTop];
};
let stDrag = null;

// A message as the diagram recorded it (past or in flight), in `el`.
function recordHtml(r, el) {
  if (r.in_flight) {
    const m = JSON.parse(viz.messageJson(r.id));
    if (m) { messageHtml(m, el); return m; }
  }
  el.textContent = '';
  const head = document.createElement('div');
  const b = document.createElement('b');
  b.textContent = `${r.ring} · ${r.kind}`;
  head.append(b, ` — node ${r.from} → node ${r.to}`);
  const why = document.createElement('div');
  why.className = 'why';
  why.textContent = r.why;
  const t = document.createElement('div');
  const end = r.end_us != null ? r.end_us : null;
  t.textContent = `sent ${usText(r.sent_us)}, ` + (r.fate.state === 'delivered'
    ? `delivered ${usText(end)} (${usText(end - r.sent_us)} on the way)`
    : r.fate.state === 'dropped' ? `dropped ${usText(end)}: ${String(r.fate.reason).replaceAll('_', ' ')}`
      : 'still in flight') + ` · message ${r.id}`;
  el.append(head, why, t);
  return r;
}

function stHover(e) {
  const tip = $('sttip');
  if (live || !viz || stDrag) { tip.hidden = true; return; }
  const [x, y] = stPoint(e);
  const id = viz.spacetimeArrowAt(x, y, 4);
  const r = id >= 0 ? JSON.parse(viz.spacetimeMessageJson(id)) : null;
  if (!r) { tip.hidden = true; return; }
  recordHtml(r, tip);
  tip.hidden = false;
  const wrap = $('stwrap').getBoundingClientRect();
  tip.style.left = `${Math.max(0, Math.min(x + 14, wrap.width - tip.offsetWidth - 4))}px`;
  tip.style.bottom = `${stCanvas.clientHeight - y + 10}px`;
}

function stPin(id) {
  const r = JSON.parse(viz.spacetimeMessageJson(id));
  if (!r) return;
  viz.selectMessage(id);
  window.shen.inspected = recordHtml(r, $('msginfo'));
  pinned = r.in_flight ? id : -1;
  pinnedLast = r.in_flight ? window.shen.inspected : null;
}

function wireSpacetime() {
  stCanvas.onmousemove = (e) => {
    if (stDrag && (e.buttons & 1)) {
      const [x] = stPoint(e);
      if (Math.abs(x - stDrag.x) > 3) stDrag.moved = true;
      if (stDrag.moved) {
        const t = Math.max(0, stDrag.t + (x - stDrag.x) * stDrag.msPerPx);
        act(() => viz.seek(t));
      }
      return;
    }
    stHover(e);
  };
  stCanvas.onmouseleave = () => { $('sttip').hidden = true; };
  stCanvas.onmousedown = (e) => {
    const [x] = stPoint(e);
    const w = viz.spacetimeWindow();
    const axis = stCanvas.clientWidth - 52;
    stDrag = { x, t: viz.spacetimeTimeAt(x), msPerPx: w.length ? (w[1] - w[0]) / Math.max(1, axis) : 1, moved: false };
    setPlaying(false);
  };
  window.addEventListener('mouseup', (e) => {
    if (!stDrag) return;
    const d = stDrag;
    stDrag = null;
    if (d.moved || e.target !== stCanvas) return;
    const [x, y] = stPoint(e);
    const id = viz.spacetimeArrowAt(x, y, 4);
    if (id >= 0) stPin(id); else act(() => viz.seek(d.t));
  });
  $('stspan').onchange = (e) => act(() => viz.setSpacetimeSpan(Number(e.target.value)));
}

// ------------------------------------------------------------ keys
let keysKey = '';
function refreshKeys() {
  const k = JSON.parse(viz.keysJson());
  const key = JSON.stringify([k.last, k.selected]);
  if (key === keysKey) return;
  keysKey = key;
  const box = $('keysinfo');
  let text = '';
  if (k.last) {
    const l = k.last;
    text += `At ${(l.at_us / 1e6).toFixed(2)} s the ring went from ${l.members_before} to ${l.members_after} members: ` +
      `${l.moved} of ${k.keys} keys moved (${(l.moved * 100 / k.keys).toFixed(1)}%), ideal ${(l.ideal * 100).toFixed(1)}% ` +
      `(1/${Math.max(l.members_before, l.members_after)}); they went to node${l.moved_to.length > 1 ? 's' : ''} ${l.moved_to.join(', ')}.`;
  } else {
    text += 'No change of ownership yet: add a node or crash one and wait until it is declared dead.';
  }
  if (k.selected) {
    text += `\nKey ${k.selected.key} (hash ${k.selected.hash}): replicas ${k.selected.replicas.join(' → ')} — ` +
      'the owner of its position, then the next distinct nodes clockwise.';
  }
  box.textContent = text;
}

// ------------------------------------------------------------ choice mode
// The learner picks the next event; every choice is in the URL. A choice
// after a rewind starts a new branch; the old one stays in the tree.
const choice = { on: false, branches: [], current: -1, key: '' };

function choiceBranchSave() {
  const b = choice.branches[choice.current];
  if (b) { b.hash = viz.urlHash(); b.trace = viz.traceHash(); b.choices = (viz.script().match(/:(deliver|fire|lose):/g) || []).length; }
}

function choose(f) {
  const forking = viz.horizonMs() > viz.timeMs() + 0.0005;
  if (forking && choice.current >= 0) {
    const at = viz.timeMs();
    choice.branches.push({ id: choice.branches.length, parent: choice.current, at, hash: '', trace: '', choices: 0 });
    choice.current = choice.branches.length - 1;
  }
  const r = act(f);
  choiceBranchSave();
  choice.key = '';
  refreshChoices();
  return r;
}

function refreshChoices() {
  const list = $('choicelist');
  if (!choice.on) { list.textContent = ''; $('branches').textContent = ''; return; }
  const cs = JSON.parse(viz.choicesJson(12));
  const key = JSON.stringify(cs) + choice.current + choice.branches.length;
  if (key === choice.key) return;
  choice.key = key;
  list.textContent = '';
  for (const c of cs) {
    const li = document.createElement('li');
    li.title = c.why;
    li.textContent = c.kind === 'timer'
      ? `node ${c.node}: ${c.ring} timer (due ${(c.due_us / 1000).toFixed(1)} ms)`
      : `${c.ring}.${c.what} ${c.from} → ${c.to} (due ${(c.due_us / 1000).toFixed(1)} ms)`;
    const b = document.createElement('button');
    b.textContent = c.kind === 'timer' ? 'Fire now' : 'Deliver';
    b.className = 'pick';
    b.onclick = () => choose(() => (c.kind === 'timer' ? viz.fire(c.node, c.ring_id, c.token) : viz.deliver(c.id)));
    li.append(b);
    if (c.kind === 'message') {
      const d = document.createElement('button');
      d.textContent = 'Drop';
      d.onclick = () => choose(() => viz.lose(c.id));
      li.append(d);
    }
    list.append(li);
  }
  const tree = $('branches');
  tree.textContent = '';
  const render = (parent, depth) => {
    for (const b of choice.branches.filter((x) => x.parent === parent)) {
      const li = document.createElement('div');
      li.className = b.id === choice.current ? 'current' : '';
      li.style.paddingLeft = `${depth}em`;
      li.textContent = `${depth ? '└ ' : ''}branch ${b.id}${b.parent !== null ? ` (from ${b.parent} at ${b.at.toFixed(1)} ms)` : ''}: ` +
        `${b.choices} choice(s), trace ${b.trace}`;
      li.onclick = () => { choice.current = b.id; if (b.hash) location.hash = b.hash; };
      tree.append(li);
      render(b.id, depth + 1);
    }
  };
  render(null, 0);
}

function setChoiceMode(on) {
  choice.on = on;
  $('choosemode').checked = on;
  if (on) {
    setPlaying(false);
    choice.branches = [{ id: 0, parent: null, at: 0, hash: viz.urlHash(), trace: viz.traceHash(), choices: 0 }];
    choice.current = 0;
  }
  choice.key = '';
  refreshChoices();
}

// ------------------------------------------------------------ run files
// A run file: the world and its actions (the URL hash), the scenario a
// faults-only run is, and the trace hash it must replay to.
const RUN_FORMAT = 'shen-viz-run';

function exportRun() {
  // A scenario lasts whole milliseconds: save on the next one, so the
  // file's scenario replays to the file's trace hash.
  const t = viz.timeMs();
  if (t !== Math.ceil(t)) viz.seek(Math.ceil(t));
  const s = JSON.parse(viz.summaryJson());
  let scenario = null;
  try { scenario = viz.scenarioToml(); } catch (e) { scenario = null; }
  const hash = viz.urlHash().replace(/&t=[^&]*/, '');
  return JSON.stringify({
    format: RUN_FORMAT, version: 1,
    url_hash: hash,
    t_ms: viz.timeMs(),
    trace_hash: viz.traceHash(),
    seed: String(s.seed), nodes: s.nodes.length,
    actions: viz.script(),
    scenario_toml: scenario,
  }, null, 2);
}

function saveRun() {
  const text = exportRun();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  a.download = `shen-run-${JSON.parse(text).trace_hash}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// Open a run file's text: rebuild its world, replay to its time, check
// the trace hash. Returns the verdict (an Error is thrown for a bad file).
function importRun(text) {
  let run;
  try { run = JSON.parse(text); } catch (e) { throw new Error(`run file: not JSON (${e.message})`); }
  if (!run || run.format !== RUN_FORMAT || run.version !== 1) {
    throw new Error(`run file: want {"format": "${RUN_FORMAT}", "version": 1, ...} (saved by Export run)`);
  }
  if (typeof run.url_hash !== 'string' || !(Number(run.t_ms) >= 0)) throw new Error('run file: needs url_hash and t_ms');
  const v = Viz.fromHash(run.url_hash);
  try { v.seek(Number(run.t_ms)); } catch (e) { v.free(); throw e; }
  const got = v.traceHash();
  viz.free();
  viz = v;
  viz.attach(canvas);
  fitCanvas();
  applyFilters();
  pinned = -1;
  narrKey = '';
  setPlaying(false);
  history.replaceState(null, '', '#' + viz.urlHash());
  refreshPanels(true);
  if (run.trace_hash && got !== run.trace_hash) {
    throw new Error(`run file: replayed to trace ${got}, the file says ${run.trace_hash}`);
  }
  return `imported: ${run.actions ? run.actions.split(',').filter(Boolean).length : 0} action(s), trace ${got} as saved`;
}

// ------------------------------------------------------------ narration
// The newest NARR_SHOWN lines, newest first; lines after now (the timeline
// was scrubbed back) are greyed. A click jumps to the line's instant.
const NARR_SHOWN = 150;
let narrKey = '';

function refreshNarration() {
  const list = $('narr');
  const now = viz.timeMs() * 1000;
  const n = JSON.parse(viz.narrationJson(NARR_SHOWN));
  if (!n.on) {
    list.textContent = '';
    $('narrnote').textContent = 'Worlds of more than 100 nodes are not narrated.';
    return;
  }
  const last = n.lines[n.lines.length - 1];
  const key = `${n.total}:${last ? last.at_us : ''}:${last ? last.text : ''}`;
  if (key !== narrKey) {
    narrKey = key;
    list.textContent = '';
    for (const l of [...n.lines].reverse()) {
      const li = document.createElement('li');
      li.className = l.ring;
      li.dataset.at = String(l.at_us);
      const t = document.createElement('span');
      t.className = 't';
      t.textContent = (l.at_us / 1e6).toFixed(3);
      li.append(t, l.text);
      li.onclick = () => { setPlaying(false); act(() => viz.seek(l.at_us / 1000)); };
      list.append(li);
    }
  }
  for (const li of list.children) li.classList.toggle('future', Number(li.dataset.at) > now);
}

// ------------------------------------------------------------ keyboard
function setPlaying(on) {
  if (on && choice.on) on = false;
  playing = on;
  $('play').textContent = playing ? 'Pause' : 'Play';
}

function onKey(e) {
  const t = e.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA') && t.type !== 'range') return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (live) return;
  const back = (ms) => act(() => viz.seek(Math.max(0, viz.timeMs() - ms)));
  switch (e.key) {
    case ' ': setPlaying(!playing); break;
    case 'ArrowRight':
      setPlaying(false);
      if (e.shiftKey) act(() => viz.seek(viz.timeMs() + 100)); else act(() => viz.step());
      break;
    case 'ArrowLeft': setPlaying(false); back(e.shiftKey ? 1000 : 100); break;
    case '?': $('keys').hidden = !$('keys').hidden; break;
    case 'Escape':
      $('keys').hidden = true;
      pinned = -1;
      viz.selectMessage(-1);
      break;
    default: return;
  }
  e.preventDefault();
}

// ------------------------------------------------------------ the loop
function tick(t) {
  if (live) {
    try { live.view.draw(performance.now()); } catch (e) { showError(e); stopLive(); }
    window.shen.ready = true;
  } else if (!benchRunning) {
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
    viz.drawSpacetime();
    if (frame % 6 === 0) { refreshPanels(false); refreshMessage(); refreshNarration(); refreshKeys(); refreshChoices(); }
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
  logPanel(s);
  lessonCheck(s);
}

// ------------------------------------------------------------ the log
const LOG_RINGS = 'sundial,cartouche,ouroboros';

// The client of a log operation: the selected node if it runs, else the
// lowest running node.
function logClient(s) {
  const sel = s.nodes[selected];
  if (sel && sel.up) return selected;
  const n = s.nodes.find((x) => x.up);
  if (!n) throw new Error('no running node to act as the client');
  return n.id;
}

// The URL hash of a log world like this one (same seed, at most 16 nodes).
function logWorldHash() {
  const s = JSON.parse(viz.summaryJson());
  const nodes = Math.min(s.nodes.length, 16);
  return `seed=${s.seed}&nodes=${Math.max(nodes, 3)}&rings=${LOG_RINGS}`;
}

function logPanel(s) {
  const log = s.log;
  $('lognone').hidden = !!log;
  $('logui').hidden = !log;
  if (!log) return;
  const sel = $('logpart');
  if (sel.options.length !== log.partitions) {
    sel.textContent = '';
    for (let p = 0; p < log.partitions; p++) sel.add(new Option(String(p), String(p)));
    sel.value = String(viz.logPartition());
  }
  const p = viz.logPartition();
  const part = log.chains[p];
  const role = (i, n) => (n === 1 ? 'H/T' : i === 0 ? 'head' : i === n - 1 ? 'tail' : 'middle');
  let text = `writes in flight: ${log.pending} client op(s), ${log.chain_msgs_in_flight} chain message(s); ` +
    `${log.acked} acknowledged append(s)\n`;
  if (part) {
    text += `partition ${p}, epoch ${part.epoch.join('.')} (table ${log.ballot.join('.')}):\n`;
    part.chain.forEach((id, i) => {
      const r = part.replicas.find((x) => x.node === id);
      text += r
        ? `  ${role(i, part.chain.length).padEnd(6)} node ${id}: len ${r.len}, commit ${Math.min(r.commit, r.len)}\n`
        : `  ${role(i, part.chain.length).padEnd(6)} node ${id}: down\n`;
    });
    for (const r of part.replicas.filter((x) => !part.chain.includes(x.node))) {
      text += `  (left)  node ${r.node}: len ${r.len}, commit ${Math.min(r.commit, r.len)}\n`;
    }
  }
  $('logchain').textContent = text;
  const ops = $('logops');
  const shown = log.ops.slice(-12).reverse();
  const key = JSON.stringify(shown);
  if (ops.dataset.key === key) return;
  ops.dataset.key = key;
  ops.textContent = '';
  for (const o of shown) {
    const li = document.createElement('li');
    li.className = o.outcome.state;
    const what = o.kind === 'append'
      ? `node ${o.node} append "${o.data}" → partition ${o.partition}`
      : `node ${o.node} read partition ${o.partition}`;
    let res;
    switch (o.outcome.state) {
      case 'pending': res = 'in flight'; break;
      case 'acked': res = `acknowledged at offset ${o.outcome.offset}`; break;
      case 'read': res = `committed ${o.outcome.committed}: ` +
        (o.outcome.records.map(([off, d]) => `${off}:${d}`).join(' ') || '(empty)'); break;
      default: res = `failed: ${o.outcome.error}`;
    }
    const at = o.done_us != null ? ` (${((o.done_us - o.issued_us) / 1000).toFixed(0)} ms)` : '';
    li.textContent = `${what}: ${res}${at}`;
    ops.appendChild(li);
  }
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
    `its view (hash ${n.view_hash.toString(16)}):\n${view}\nphi it computes: ${phi || '-'}` +
    (viz.hasLog() && n.up ? `\nlog partition ${viz.logPartition()}: ${viz.logDebug(id, viz.logPartition())}` : '');
  box.appendChild(p);
  const b1 = document.createElement('button');
  b1.textContent = n.up ? 'Crash' : 'Restart';
  b1.onclick = () => act(() => viz.toggle(id));
  const b2 = document.createElement('button');
  b2.textContent = 'Request token';
  b2.onclick = () => act(() => viz.request(id));
  box.append(b1, ' ', b2);
  const row = document.createElement('div');
  row.className = 'faults';
  const fault = (label, title, f) => {
    const b = document.createElement('button');
    b.textContent = label;
    b.title = title;
    b.onclick = () => act(f);
    row.append(b);
  };
  if (n.up) {
    fault('Pause 1 s', 'stall it for 1 s (a GC pause): messages and timers due meanwhile wait', () => viz.pause(id, 1000));
    fault('Clock −500 ms', 'step its clock back 500 ms (its timers are re-aimed)', () => viz.skew(id, -500));
    fault('Clock +500 ms', 'step its clock forward 500 ms', () => viz.skew(id, 500));
  }
  fault('Power loss', 'restart it losing the disk writes not yet fsynced (a process crash keeps them)', () => viz.powerLoss(id));
  box.append(row);
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
  ouroboros: [
    { text: 'Ouroboros keeps the Shen log: each partition is a chain head → middle → tail (cyan arrows; the panel top left shows each member\'s log). Type a key and press "Append".',
      check: (s, b) => s.log && s.log.acked > (b.log ? b.log.acked : 0) },
    { text: 'The record went down the chain (cyan dots) and the tail\'s acknowledgement came back up (purple): only then was it acknowledged. Pick the partition it went to, then crash the head of that chain (double-click the node marked H).',
      check: (s, b) => s.log && s.nodes.some((n) => !n.up) && ev(s, 'ouroboros.reconfig_done') > ev(b, 'ouroboros.reconfig_done') },
    { text: 'Sundial declared it dead; the Cartouche token holder ran a Paxos round with its fencing number as the ballot and installed a new chain without it (a new epoch). Press "Read tail": the record you appended is still there.',
      check: (s, b) => s.log && s.log.ops.some((o) => o.kind === 'read' && o.outcome.state === 'read' && o.outcome.records.length > 0 && o.issued_us >= b.time_us) },
    { text: 'Done: a record is acknowledged only once every member has it, and a new chain keeps the survivors in order, so no acknowledged append is lost and every committed prefix agrees (the two log invariants). Crash all three members of a chain and see what the guarantee does not cover.' },
  ],
};
let lesson = null;
let pendingLesson = null;
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
  if (name === 'ouroboros' && !viz.hasLog()) {
    // The log lesson needs a log world: switch (the hashchange handler
    // builds it), then start.
    pendingLesson = name;
    location.hash = logWorldHash();
    return;
  }
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
  budget_ms = FRAME_BUDGET_MS, spacetime = true } = {}) {
  const wall0 = performance.now();
  benchRunning = true;
  const old = viz;
  const b = new Viz(String(seed), nodes);
  b.attach(canvas);
  if (spacetime) fitSpacetime(b);
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
      if (spacetime) b.drawSpacetime();
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
    nodes, frames, speed: sp, spacetime: spacetime && b.spacetimeOn(),
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
  fitSpacetime(viz);
  benchRunning = false;
  return result;
}

// ------------------------------------------------------------ wiring
function wire() {
  $('play').onclick = () => setPlaying(!playing);
  $('help').onclick = () => { $('keys').hidden = !$('keys').hidden; };
  document.addEventListener('keydown', onKey);
  canvas.onmousemove = showTip;
  canvas.onmouseleave = () => { $('tip').hidden = true; };
  new ResizeObserver(() => { if (!live) fitCanvas(); }).observe(canvas);
  buildFilters();
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
  wireSpacetime();
  $('choosemode').onchange = (e) => setChoiceMode(e.target.checked);
  $('showkeys').onchange = (e) => { viz.setKeys(e.target.checked); };
  $('export').onclick = saveRun;
  $('import').onchange = async (e) => {
    const f = e.target.files && e.target.files[0];
    e.target.value = '';
    if (!f) return;
    try { showNote(importRun(await f.text())); } catch (err) { showError(err); }
  };
  $('share').onclick = () => {
    history.replaceState(null, '', '#' + viz.urlHash());
    navigator.clipboard?.writeText(location.href).catch(() => {});
  };
  const pos = canvasPoint;
  canvas.onclick = (e) => {
    const [x, y] = pos(e);
    const id = viz.nodeAt(x, y);
    const m = id < 0 ? viz.messageAt(x, y, 6) : -1;
    if (m >= 0) { pinMessage(m); return; }
    const k = id < 0 ? viz.keyAt(x, y, 5) : -1;
    viz.selectKey(k);
    if (k >= 0) { refreshKeys(); return; }
    selected = id;
    viz.select(selected);
    if (selected >= 0) inspect(selected);
  };
  canvas.ondblclick = (e) => {
    const id = viz.nodeAt(...pos(e));
    if (id >= 0) act(() => viz.toggle(id));
  };
  $('logopen').onclick = () => { location.hash = logWorldHash(); };
  $('logpart').onchange = (e) => act(() => viz.setLogPartition(Number(e.target.value)));
  const keyPart = () => {
    const k = $('logkey').value.trim();
    $('logkeypart').textContent = viz.hasLog() && k ? `→ partition ${viz.partitionOfKey(k)}` : '';
  };
  $('logkey').oninput = keyPart;
  $('logappend').onclick = () => act(() => {
    const r = viz.append(logClient(JSON.parse(viz.summaryJson())), $('logkey').value);
    viz.setLogPartition(viz.partitionOfKey($('logkey').value));
    $('logpart').value = String(viz.logPartition());
    return r;
  });
  $('logburst').onclick = () => act(() => {
    const c = logClient(JSON.parse(viz.summaryJson()));
    for (let i = 1; i <= 5; i++) viz.append(c, `${$('logkey').value.trim()}-${i}`);
  });
  $('logread').onclick = () => act(() => viz.read(logClient(JSON.parse(viz.summaryJson())), viz.logPartition()));
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
  $('liveconnect').onclick = () => {
    const a = $('liveaddr').value.trim();
    if (startLive(a)) history.replaceState(null, '', `#live=${a}`);
  };
  $('livestop').onclick = () => { stopLive(); history.replaceState(null, '', '#' + viz.urlHash()); liveMessage('live mode off'); };
  $('livefork').onclick = forkLive;
  window.addEventListener('hashchange', () => {
    const addr = liveAddrOf(location.hash.slice(1));
    if (addr !== null) { startLive(addr); return; }
    stopLive();
    if ('#' + viz.urlHash() === location.hash) return;
    viz.free();
    viz = makeViz();
    viz.attach(canvas);
    fitCanvas();
    applyFilters();
    pinned = -1;
    narrKey = '';
    window.shen.viz = viz;
    $('logpart').textContent = '';
    keyPart();
    refreshPanels(true);
    if (pendingLesson) {
      const l = pendingLesson;
      pendingLesson = null;
      lessonStart(l);
    }
  });
  keyPart();
}

await init();
viz = makeViz();
viz.attach(canvas);
fitCanvas();
window.shen = {
  get viz() { return viz; },
  set viz(v) { viz = v; },
  state: () => JSON.parse(viz.stateJson()),
  summary: () => JSON.parse(viz.summaryJson()),
  play: (on) => { playing = !!on; $('play').textContent = playing ? 'Pause' : 'Play'; },
  bench,
  exportRun,
  choice,
  importRun: (text) => importRun(text),
  ready: false,
  inspected: null,
  live: null,
};
wire();
{
  const addr = liveAddrOf(location.hash.slice(1));
  if (addr !== null) startLive(addr);
}
requestAnimationFrame(tick);
