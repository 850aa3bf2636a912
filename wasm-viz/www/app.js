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
    history.replaceState(null, '', '#' + pageHash());
    refreshPanels(true);
    return r;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

// A side-by-side hash (sidebyside.js draws it): this file's world waits.
const sideBySide = (hash) => /(^|&)sbs=/.test(hash);

function makeViz() {
  const hash = location.hash.slice(1);
  if (liveAddrOf(hash) !== null || sideBySide(hash)) return Viz.fromHash('');
  try {
    // A lesson link without a world opens the lesson's own world.
    const { world, name } = splitLessonHash(hash);
    return Viz.fromHash(!world && LESSONS[name] ? LESSONS[name].world : world);
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
      li.dataset.id = String(l.id); // causes.js: the line's cause chain
      if (l.causes) li.classList.add('caused');
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
  if (live || sideBySide(location.hash.slice(1))) return; // sidebyside.js has its own keys
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
  } else if (sideBySide(location.hash.slice(1))) {
    window.shen.ready = true;
  } else if (!benchRunning) {
    if (lastT !== null && reveal && reveal.kind === 'predict') {
      try { revealTick(Math.min(t - lastT, 100)); } catch (e) { reveal = null; showError(e); }
    } else if (lastT !== null && playing) {
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

// The log's member set in one line: version, members, leaving, gone.
function membersLine(log) {
  const m = log.members;
  let text = `members v${m.version} (${m.nodes.length}): ${m.nodes.join(', ')}`;
  if (m.leaving.length) text += `; leaving: ${m.leaving.join(', ')}`;
  const asked = log.leave_asked.filter((n) => !m.leaving.includes(n));
  if (asked.length) text += `; asked to leave: ${asked.join(', ')}`;
  if (log.gone.length) text += `; left for good: ${log.gone.join(', ')}`;
  return text;
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
  text += membersLine(log) + '\n';
  if (part) {
    text += `partition ${p}, epoch ${part.epoch.join('.')} (table ${log.ballot.join('.')}):\n`;
    part.chain.forEach((id, i) => {
      const r = part.replicas.find((x) => x.node === id);
      text += r
        ? `  ${role(i, part.chain.length).padEnd(6)} node ${id}: len ${r.len}, commit ${Math.min(r.commit, r.len)}\n`
        : `  ${role(i, part.chain.length).padEnd(6)} node ${id}: down\n`;
    });
    for (const id of part.learners) {
      const r = part.replicas.find((x) => x.node === id);
      text += `  learner node ${id}: ${r ? `len ${r.len}, catching up from the tail` : 'down'}\n`;
    }
    for (const r of part.replicas.filter((x) => !part.chain.includes(x.node) && !part.learners.includes(x.node))) {
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
  const log = JSON.parse(viz.summaryJson()).log;
  if (log) {
    const member = log.members.nodes.includes(id);
    const lrow = document.createElement('div');
    lrow.className = 'faults';
    const b = (bid, label, title, f) => {
      const x = document.createElement('button');
      x.id = bid;
      x.textContent = label;
      x.title = title;
      x.onclick = () => act(f);
      lrow.append(x);
    };
    if (n.up && member && !log.leave_asked.includes(id)) {
      b('logleave', 'Leave the log', 'shen leave: its partitions move to other members, then it leaves the member set and stops for good', () => viz.leave(id));
    }
    if (member && !n.up) {
      b('logremove', 'Remove member', 'shen member remove, sent from the lowest running member: takes this dead member out of the member set', () => viz.removeMember(id));
    }
    if (!member && n.up) lrow.append(`not a log member${log.gone.includes(id) ? '' : ' (yet)'}`);
    if (log.gone.includes(id)) lrow.append('left the log for good');
    box.append(lrow);
  }
}

// ------------------------------------------------------------ lessons
// A lesson is a list of steps. A step explains one thing (`text`), points
// at what it is about (`hl`: nodes, arcs, message kinds on the canvas and
// a panel of the page), and either asks the learner to do something
// (`check`, true once they did) or to predict what happens (`predict`:
// the page then makes it happen, runs the world and says who was right,
// from the actual run). `enter` reads what the step is about from the
// world as it is (again while `ready` says what it needs is missing);
// `setup` brings a fresh lesson world to where the step starts (teacher
// links: `#...&lesson=NAME&step=N`). A challenge per ring
// lets the learner try to break the ring; the invariants referee.
const ev = (s, name) => (s.events && s.events[name]) || 0;
const REVEAL_SPEED = 2; // virtual ms per wall ms while the page shows an outcome
const REVEAL_CHUNK_MS = 10;
const keysNow = () => JSON.parse(viz.keysJson());
const upIds = (s) => s.nodes.filter((n) => n.up).map((n) => n.id);
const majority = (n) => Math.floor(n / 2) + 1;
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const inv = (s, name) => s.invariants.find((i) => i.name === name) || { state: 'ok' };
// Where the token is: the nodes it rests at, the holders, both ends of a
// token message in flight.
const tokenNodes = (s) => [...new Set([...s.token.at, ...s.token.holders, ...s.token.in_flight.flatMap((m) => [m[1], m[2]])])];
// Ranges of the hash space: the one holding fraction x, its middle.
const inRange = (r, x) => (r.start < r.end ? x > r.start && x <= r.end : x > r.start || x <= r.end);
const rangeAt = (s, x) => (s.ankh && s.ankh.ranges ? s.ankh.ranges.find((r) => inRange(r, x)) : null);
const rangeMid = (r) => { const len = (r.end - r.start + 1) % 1 || 1; return (r.start + len / 2) % 1; };
const rangeLen = (r) => (r.end - r.start + 1) % 1 || 1;
// Cartouche's loss timeout on this page (rings/src/cartouche.rs:
// lease·(1 + 2·drift) + (idle pass + hop latency)·2n + 2·quorum timeout,
// with the page's settings: lease 300 ms, drift 0.1, idle pass 150 ms, hop
// latency 80 ms, quorum timeout 100 ms).
const lossTimeoutMs = (n) => 300 * 1.2 + (150 + 80) * 2 * n + 2 * 100;
const otherNodes = (s, ids) => s.nodes.map((n) => n.id).filter((i) => !ids.includes(i));
const groups = (a, b) => `${a.join('.')}/${b.join('.')}`;
const logChain = (s, p) => (s.log && s.log.chains[p] ? s.log.chains[p].chain : []);
const roleName = (i, n) => (i === 0 ? 'head' : i === n - 1 ? 'tail' : 'middle');
// A log client off the chain when there is one (its requests then travel).
const logClientOff = (s, chain) => (upIds(s).find((i) => !chain.includes(i)) ?? upIds(s)[0]);
const ackedOn = (s, p) => s.log.ops.filter((o) => o.kind === 'append' && o.partition === p && o.outcome.state === 'acked');
// Run the world until `f(state)` or `ms` pass (setups and skips).
function runUntil(v, f, ms) {
  const end = v.timeMs() + ms;
  while (v.timeMs() < end) {
    v.advance(Math.min(50, end - v.timeMs()), 0);
    if (f && f(JSON.parse(v.stateJson()))) return true;
  }
  return false;
}
const settle = (v) => { if (v.timeMs() < 3000) v.advance(3000 - v.timeMs(), 0); };

const LESSONS = {
  ankh: {
    title: 'Ankh: consistent hashing',
    world: 'seed=11&nodes=6',
    fits: (s) => s.nodes.length >= 4 && s.nodes.length <= 12 && !!s.ankh,
    steps: [
      {
        enter: (s, c) => {
          const by = (id) => s.ankh.ranges.filter((r) => r.owner === id);
          c.a = s.ankh.members.reduce((m, id) => (s.nodes[id].share > s.nodes[m].share ? id : m), s.ankh.members[0]);
          c.arcs = by(c.a);
        },
        text: (s, c) => `The inner ring is the hash space, read clockwise from the top. Each node hashes its id to ${s.ankh.vnodes} points on it (virtual nodes). The arc that ends at a point belongs to that point's node and has its colour. Node ${c.a} (outlined) owns ${c.arcs.length} arcs here, ${pct(s.nodes[c.a].share)} of the ring.`,
        hl: (s, c) => ({ nodes: [c.a], arcs: c.arcs.map((r) => [r.start, r.end]) }),
      },
      {
        text: () => 'A key belongs to the first point at or after its own hash, clockwise. The small dots inside the ring are 256 sample keys, each in its owner\'s colour. Click one key dot.',
        hl: () => ({ panel: 'keyspanel' }),
        check: () => !!keysNow().selected,
      },
      {
        setup: (v) => { settle(v); v.selectKey(40); },
        enter: (s, c) => { c.key = keysNow().selected; },
        text: (s, c) => (c.key
          ? `The lines from key ${c.key.key} show its replica walk: its owner first, then the next 2 distinct nodes clockwise (the replication factor is 3). Points of a node already chosen are skipped, so the 3 copies sit on 3 different nodes: ${c.key.replicas.join(' → ')}.`
          : 'Click a key dot: its lines show its replica walk, the owner then the next 2 distinct nodes clockwise.'),
        hl: (s, c) => ({ nodes: c.key ? c.key.replicas : [], panel: 'keyspanel' }),
      },
      {
        enter: (s, c) => { c.n = s.ankh.members.length; },
        predict: {
          q: (s, c) => `A new node is about to join the ${c.n} in the ring. How many of the 256 sample keys will change owner?`,
          options: (s, c) => [
            ['none', 'none'], ['share', `about 1/${c.n + 1} of them (≈${Math.round(256 / (c.n + 1))})`],
            ['half', 'about half (≈128)'], ['all', 'nearly all'],
          ],
          run: (c) => { c.t0 = viz.timeMs() * 1000; c.id = viz.addNode(); },
          until: (s, c) => { const l = keysNow().last; return !!l && l.at_us > c.t0 && s.ankh.members.includes(c.id); },
          max_ms: 10000,
          answer: (s, c) => {
            const l = keysNow().last;
            c.moved = l && l.at_us > c.t0 ? l.moved : 0;
            c.ideal = l ? l.ideal : 0;
            const f = c.moved / 256;
            return c.moved === 0 ? 'none' : f <= 0.3 ? 'share' : f <= 0.7 ? 'half' : 'all';
          },
          why: (s, c) => `${c.moved} of 256 keys moved (${pct(c.moved / 256)}); the ideal is 1/${c.n + 1} = ${pct(c.ideal)}. A key changes owner only if one of the new node's ${s.ankh.vnodes} points lands between its hash and its old owner's point.`,
        },
        hl: (s, c) => ({ nodes: c.id != null ? [c.id] : [], panel: 'keyspanel' }),
      },
      {
        setup: (v) => { settle(v); v.addNode(); v.advance(4000, 0); },
        enter: (s, c) => { c.last = keysNow().last; },
        text: (s, c) => (c.last
          ? `Where did they go? All ${c.last.moved} to node${c.last.moved_to.length > 1 ? 's' : ''} ${c.last.moved_to.join(', ')}, the node that joined (${c.last.joined.join(', ') || 'none'}); ${c.last.strays} moved between two nodes that were there before. Some old nodes lost keys; none gained any.`
          : 'No change of the ring yet: add a node.'),
        hl: (s, c) => ({ nodes: c.last ? c.last.moved_to : [], panel: 'keyspanel' }),
      },
      {
        enter: (s, c) => {
          // The biggest arc of a node other than the lowest running one
          // (whose view the ring is drawn from).
          const low = upIds(s)[0];
          const cand = s.ankh.ranges.filter((r) => r.owner !== low && s.nodes[r.owner].up);
          c.range = cand.reduce((m, r) => (rangeLen(r) > rangeLen(m) ? r : m), cand[0]);
          c.victim = c.range.owner;
          const ix = s.ankh.ranges.indexOf(c.range);
          c.expected = s.ankh.ranges[(ix + 1) % s.ankh.ranges.length].owner;
        },
        predict: {
          q: (s, c) => `The outlined arc belongs to node ${c.victim}. The page will crash node ${c.victim}; once the others declare it dead, it leaves the ring. Which node takes over this arc?`,
          options: (s, c) => s.ankh.members.filter((i) => i !== c.victim).map((i) => [i, `node ${i}`]),
          run: (c) => { viz.crash(c.victim); },
          until: (s, c) => !s.ankh.members.includes(c.victim),
          max_ms: 20000,
          answer: (s, c) => { const r = rangeAt(s, rangeMid(c.range)); return r ? r.owner : null; },
          why: (s, c, a) => `Node ${a} took it. Keys in the arc walk on clockwise past node ${c.victim}'s removed point to the next point, which is node ${c.expected}'s.` +
            (a === c.expected ? '' : ` (The ring changed in between: node ${a} got it.)`),
        },
        hl: (s, c) => ({ nodes: [c.result != null ? c.result : c.victim], arcs: [[c.range.start, c.range.end]] }),
      },
      {
        setup: (v) => {
          settle(v);
          const s = JSON.parse(v.stateJson());
          const low = upIds(s)[0];
          const victim = s.ankh.ranges.filter((r) => r.owner !== low).reduce((m, r) => (rangeLen(r) > rangeLen(m) ? r : m)).owner;
          v.crash(victim);
          runUntil(v, (x) => !x.ankh.members.includes(victim), 20000);
        },
        enter: (s, c) => { c.last = keysNow().last; },
        text: (s, c) => (c.last && c.last.left.length
          ? `Only node ${c.last.left.join(', ')}'s keys moved: ${c.last.moved} keys, from node${c.last.moved_from.length > 1 ? 's' : ''} ${c.last.moved_from.join(', ')} to nodes ${c.last.moved_to.join(', ')}. Every other key stayed where it was. Each node computes this alone, from its own Sundial view: Ankh sends no messages.`
          : 'Crash a node and wait until it is declared dead: only its keys move.'),
        hl: (s, c) => ({ nodes: c.last ? c.last.moved_to : [], panel: 'keyspanel' }),
      },
      {
        setup: (v) => {
          settle(v);
          const s = JSON.parse(v.stateJson());
          const low = upIds(s)[0];
          const victim = s.ankh.ranges.filter((r) => r.owner !== low).reduce((m, r) => (rangeLen(r) > rangeLen(m) ? r : m)).owner;
          v.crash(victim);
          runUntil(v, (x) => !x.ankh.members.includes(victim), 20000);
        },
        enter: (s, c) => { c.victim = (s.nodes.find((n) => !n.up) || {}).id; },
        ready: (c) => c.victim != null,
        predict: {
          q: (s, c) => (c.victim == null ? 'No node is down: crash one first (double-click it).'
            : `Node ${c.victim} is down. The page will restart it. Which arcs will it own once it is back in the ring?`),
          options: (s, c) => (c.victim == null ? [] : [
            ['same', 'exactly the arcs it had before'], ['new', 'a new set of arcs'], ['none', 'none until an operator rebalances'],
          ]),
          run: (c) => { viz.restart(c.victim); },
          until: (s, c) => s.ankh.members.includes(c.victim),
          max_ms: 15000,
          answer: (s, c) => {
            const mine = s.ankh.ranges.filter((r) => r.owner === c.victim);
            if (!mine.length) return 'none';
            // The same world replayed to just before the node's crash.
            const crashes = viz.script().split(',').filter((a) => a.endsWith(`:crash:${c.victim}`));
            const at = crashes.length ? Number(crashes.at(-1).split(':')[0]) / 1000 - 1 : 3000;
            const before = Viz.fromHash(`${viz.urlHash().replace(/&t=[^&]*/, '')}&t=${Math.max(0, at)}`);
            const then = JSON.parse(before.stateJson()).ankh.ranges.filter((r) => r.owner === c.victim);
            before.free();
            const key = (rs) => rs.map((r) => `${r.start.toFixed(9)}-${r.end.toFixed(9)}`).sort().join(',');
            c.count = mine.length;
            return key(mine) === key(then) ? 'same' : 'new';
          },
          why: (s, c, a) => (a === 'same'
            ? `It owns the same ${c.count} arcs as just before its crash: its points are hashes of its id, so they land where they were, and the keys it had come back to it.`
            : a === 'new' ? 'Its arcs differ from the start: another join or leave changed the ring meanwhile.' : 'It owns no arc yet.'),
        },
        hl: (s, c) => ({ nodes: c.victim != null ? [c.victim] : [] }),
      },
      {
        text: () => 'Your turn: press Add node, then watch the keys panel count the keys that moved against the ideal share.',
        hl: () => ({ panel: 'add' }),
        check: (s, b) => { const l = keysNow().last; return s.nodes.length > b.nodes.length && !!l && l.at_us > b.time_us; },
      },
      {
        text: (s) => {
          const sh = s.ankh.members.map((i) => s.nodes[i].share);
          return `Why many points per node? With few, arcs are uneven: with ${s.ankh.vnodes} points each, shares here run from ${pct(Math.min(...sh))} to ${pct(Math.max(...sh))}. Shen's default is 160 points per node, which evens them out (try a link with vnodes=160).`;
        },
        hl: (s) => ({ nodes: s.ankh.members }),
      },
    ],
    challenge: {
      title: 'Move a key between two nodes that both stay in the ring',
      text: 'Use anything: Add node, crashes, restarts, partitions. The referee is the keys panel: every key that changes owner must come from a node that left or go to a node that joined. Press "I\'m done" when you have tried.',
      start: (s, c) => { c.t0 = s.time_us; },
      finish: () => { if (JSON.parse(viz.summaryJson()).partitioned) viz.heal(); if (JSON.parse(viz.summaryJson()).loss > 0) viz.setLoss(0); },
      until: (s) => inv(s, 'placements_agree').state === 'ok',
      max_ms: 25000,
      explain: (s, c) => {
        const h = keysNow().history.filter((m) => m.at_us >= c.t0);
        const moved = h.reduce((a, m) => a + m.moved, 0);
        const strays = h.reduce((a, m) => a + m.strays, 0);
        if (strays > 0) return { bad: true, text: `${strays} key(s) moved between two nodes that stayed. Consistent hashing never does that: this is a bug. Please report it with this page's link.` };
        if (!h.length) return { text: 'The ring did not change: add or crash a node and try again.' };
        return {
          text: `The ring changed ${h.length} time(s); ${moved} keys moved, every one from a node that left or to a node that joined (0 strays). That is consistent hashing: a key's owner is the first point clockwise from its hash. New points can only take keys for themselves; removed points only hand their own keys to the next point. Every node computes the same ring from the same member list, so after the views converge the placements agree again.`,
        };
      },
    },
  },

  sundial: {
    title: 'Sundial: gossip & failure detection',
    world: 'seed=2&nodes=6',
    fits: (s) => s.nodes.length >= 4 && s.nodes.length <= 12 && s.phi_threshold > 0,
    steps: [
      {
        text: (s) => `Sundial keeps the member list. Every 200 ms each node starts a gossip round with 3 peers (blue dots): it sends the hash of its view (syn); only if the views differ do they swap the missing records (syn_ack, pull, delta). ${inv(s, 'views_converged').state === 'ok' ? `All ${upIds(s).length} running nodes now agree.` : 'The views are still converging.'}`,
        hl: () => ({ kinds: ['sundial.syn', 'sundial.syn_ack', 'sundial.pull', 'sundial.delta'] }),
      },
      {
        text: (s) => `Each node also probes its 3 predecessors on the circle (probe, answered by probe_ack). From how late the answers come it computes phi, a measure of how unlikely the silence is; the gauge inside a node shows the highest phi its monitors compute, full at the threshold ${s.phi_threshold}.`,
        hl: () => ({ kinds: ['sundial.probe', 'sundial.probe_ack'] }),
      },
      {
        text: () => 'Click a node: the Node panel shows who counts it alive, suspect or dead, and the phi it computes for each node it monitors.',
        hl: () => ({ panel: 'inspect' }),
        check: () => selected >= 0,
      },
      {
        enter: (s, c) => { c.victim = upIds(s).at(-1); },
        predict: {
          q: (s, c) => `The page will crash node ${c.victim}. How long until most of the others declare it dead?`,
          options: () => [['fast', 'under 2 s'], ['mid', '2 to 8 s'], ['slow', '8 s or more'], ['never', 'never: it might come back']],
          run: (c) => { c.t0 = viz.timeMs(); viz.crash(c.victim); },
          until: (s, c) => s.nodes[c.victim].declared_dead,
          max_ms: 20000,
          answer: (s, c) => {
            if (!s.nodes[c.victim].declared_dead) return 'never';
            c.dt = viz.timeMs() - c.t0;
            return c.dt < 2000 ? 'fast' : c.dt < 8000 ? 'mid' : 'slow';
          },
          why: (s, c) => (c.dt != null
            ? `It took about ${secs(c.dt)}: its monitors' phi passed the threshold ${s.phi_threshold} as its answers stopped, each of them suspected it, and with 2 independent suspectors the wait before declaring it dead is only 400 ms (a single suspector waits up to 10 s).`
            : 'It was not declared dead within 20 s.'),
        },
        hl: (s, c) => ({ nodes: [c.victim] }),
      },
      {
        setup: (v) => { settle(v); v.crash(v.nodeCount() - 1); v.advance(8000, 0); },
        enter: (s, c) => { c.victim = (s.nodes.find((n) => !n.up) || {}).id; },
        text: (s, c) => `You saw it on node ${c.victim ?? '(crash one)'}: the phi gauge filled, an orange ring (suspected), then a dark red one (declared dead). The What happened panel tells each step in words; click a line to jump there on the timeline.`,
        hl: (s, c) => ({ nodes: c.victim != null ? [c.victim] : [], panel: 'story' }),
      },
      {
        setup: (v) => { settle(v); v.crash(v.nodeCount() - 1); v.advance(8000, 0); },
        enter: (s, c) => { const d = s.nodes.find((n) => !n.up); c.victim = d ? d.id : null; c.inc = d ? d.incarnation : 0; },
        ready: (c) => c.victim != null,
        text: (s, c) => (c.victim != null
          ? `Restart node ${c.victim}: double-click it. It comes back with a higher incarnation, and a record with a higher incarnation beats the death record in every view.`
          : 'No node is down: crash one (double-click), wait, then restart it.'),
        hl: (s, c) => ({ nodes: c.victim != null ? [c.victim] : [] }),
        check: (s, b, c) => c.victim != null && s.nodes[c.victim].up && s.nodes[c.victim].incarnation > c.inc && inv(s, 'views_converged').state === 'ok',
      },
      {
        enter: (s, c) => { c.y = upIds(s)[1]; },
        predict: {
          q: (s, c) => `Node ${c.y} is healthy. The page will cut it off from the others (a partition: node ${c.y} alone on one side). Will the others declare it dead?`,
          options: () => [['yes', 'yes'], ['no', 'no: it is still running']],
          run: (c) => { viz.partition(groups([c.y], otherNodes(JSON.parse(viz.summaryJson()), [c.y]))); },
          until: (s, c) => s.nodes[c.y].declared_dead,
          max_ms: 15000,
          answer: (s, c) => (s.nodes[c.y].declared_dead ? 'yes' : 'no'),
          why: (s, c, a) => (a === 'yes'
            ? 'Yes. From the other side a cut link and a crash look the same: no answers. A failure detector can only tell silence, not its cause. What makes this safe to undo is the next step.'
            : 'Not within 15 s.'),
        },
        hl: (s, c) => ({ nodes: [c.y] }),
      },
      {
        setup: (v) => { settle(v); v.partition(groups([1], [0, 2, 3, 4, 5].filter((i) => i < v.nodeCount()))); v.advance(6000, 0); },
        enter: (s, c) => { c.y = (s.nodes.find((n) => n.up && n.dead_votes > 0) || {}).id; },
        text: (s, c) => `Heal the network (the Heal button). Node ${c.y ?? 'the cut-off node'} hears that it was declared dead and refutes it: it raises its incarnation and gossips the new record, which beats the death record.`,
        hl: (s, c) => ({ nodes: c.y != null ? [c.y] : [], panel: 'heal' }),
        check: (s, b) => !s.partitioned && ev(s, 'sundial.refuted') > ev(b, 'sundial.refuted') && inv(s, 'views_converged').state === 'ok',
      },
      {
        text: () => 'Loss makes silence too. Set the loss slider to 0.3 or more for a few seconds, watch the orange rings of suspicion with no node crashed, then set it back to 0.',
        hl: () => ({ panel: 'loss' }),
        check: (s, b, c) => { c.lossy = c.lossy || s.loss >= 0.3; return c.lossy && s.loss === 0; },
      },
      {
        text: () => 'The views_converged invariant (Invariants panel) says: every running node has the same view, sees every running node alive and every crashed node dead. It is a liveness promise: suspended while a partition or loss is in force, violated only if it stays false for about 20 s after your last action.',
        hl: () => ({ panel: 'invariants' }),
      },
    ],
    challenge: {
      title: 'Keep a running node counted dead after the network is whole again',
      text: 'Partition, add loss, crash, restart, pause or skew clocks as you like. When you press "I\'m done", the page heals the network, sets the loss to 0 and waits; the views_converged invariant is the referee.',
      start: (s, c) => { c.t0 = s.time_us; c.died = ev(s, 'sundial.died'); c.ref = ev(s, 'sundial.refuted'); },
      finish: () => { const s = JSON.parse(viz.summaryJson()); if (s.partitioned) viz.heal(); if (s.loss > 0) viz.setLoss(0); },
      until: (s) => inv(s, 'views_converged').state === 'ok',
      max_ms: 25000,
      explain: (s, c) => {
        const died = ev(s, 'sundial.died') - c.died;
        const ref = ev(s, 'sundial.refuted') - c.ref;
        const ok = inv(s, 'views_converged').state === 'ok';
        if (!ok) return { bad: true, text: `views_converged is ${inv(s, 'views_converged').state} (${inv(s, 'views_converged').detail}): the views did not converge within its bound. That would be a bug: please report it with this page's link.` };
        return {
          text: `Every running node is counted alive again. During your attempt nodes were declared dead ${died} time(s) and refuted ${ref} time(s). A node declared dead keeps hearing gossip (every 5th round a node also sends its digest to one member it counts dead), learns it, and raises its incarnation: a record with a higher incarnation beats the death record, so once the network carries messages, every view takes it back.`,
        };
      },
    },
  },

  cartouche: {
    title: 'Cartouche: the token',
    world: 'seed=5&nodes=6',
    fits: (s) => s.nodes.length >= 4 && s.nodes.length <= 12 && !!s.token,
    steps: [
      {
        text: () => 'Cartouche passes one token clockwise around the members (the big gold dot; a gold ring where it rests, about 150 ms at each node on this page). Whoever holds the token may grant the lock to the first request in its queue.',
        hl: (s) => ({ nodes: tokenNodes(s), kinds: ['cartouche.token'] }),
      },
      {
        text: () => 'Click a node, then press "Request token" in the Node panel.',
        hl: () => ({ panel: 'inspect' }),
        check: (s, b) => ev(s, 'cartouche.granted') > ev(b, 'cartouche.granted'),
      },
      {
        text: (s) => `Before granting, the node holding the token sent Confirm to every member and waited until a majority (${majority(s.nodes.length)} of ${s.nodes.length}) accepted the grant's fencing number (generation, sequence). A member accepts a number only if it is higher than any it accepted before, so fencing numbers only grow${s.token.fencing ? ` (the latest: ${s.token.fencing.join('.')})` : ''}.`,
        hl: () => ({ kinds: ['cartouche.confirm', 'cartouche.confirm_ack'] }),
      },
      {
        predict: {
          q: () => 'The page will drop the token while it travels from one node to the next. What happens?',
          options: () => [['resent', 'the sender sends it again'], ['regen', 'after a timeout a majority creates a new token'], ['stops', 'the ring stops for good']],
          run: (c) => {
            const s0 = JSON.parse(viz.summaryJson());
            c.g0 = ev(s0, 'cartouche.regenerated');
            // Wait (at most 3 s) for the token to be in flight.
            for (let i = 0; i < 600 && !JSON.parse(viz.summaryJson()).token.in_flight.length; i++) viz.advance(5, 0);
            viz.dropToken();
          },
          until: (s, c) => ev(s, 'cartouche.regenerated') > c.g0,
          max_ms: 6000,
          answer: (s, c) => (ev(s, 'cartouche.regenerated') > c.g0 ? 'regen' : tokenNodes(s).length ? 'resent' : 'stops'),
          why: (s, c, a) => (a === 'resent'
            ? 'The sender kept the token until the receiver acknowledged it (token_ack). No acknowledgement came, so it retried the hand-off (to the next member): a lost message is not a lost token.'
            : a === 'regen' ? 'The hand-off could not be retried, so the token was regenerated (see the next steps).' : 'No token is left in the ring.'),
        },
        hl: () => ({ kinds: ['cartouche.token', 'cartouche.token_ack'] }),
      },
      {
        predict: {
          q: () => 'Now the page will crash the node where the token rests (outlined when it rests). How long until a new token exists?',
          options: (s) => [['soon', `about ${secs(lossTimeoutMs(s.nodes.length))} or less`], ['long', 'more than 10 s'], ['never', 'never']],
          run: (c) => {
            // Wait (at most 3 s) for the token to rest at a node, as seen at
            // a check point now (the observation is refreshed every 50 ms).
            // (and no copy of it in flight: a hand-off keeps the token
            // at the sender until the receiver acknowledges it).
            // The crash comes a millisecond later (actions start on the next
            // whole ms), so take a node the token has just reached: it rests
            // there for the next ~150 ms.
            const resting = (x) => x.token.at.length === 1 && !x.token.in_flight.length && x.observed_us === x.time_us;
            const nextCheck = () => viz.advance((Math.floor(viz.timeMs() / 50 + 1e-9) + 1) * 50 - viz.timeMs(), 0);
            nextCheck();
            let before = JSON.parse(viz.summaryJson()).token.at.join();
            let s0 = null;
            for (let i = 0; i < 60 && !s0; i++) {
              nextCheck();
              const x = JSON.parse(viz.summaryJson());
              if (resting(x) && x.token.at.join() !== before) s0 = x;
              before = x.token.at.join();
            }
            if (!s0) throw new Error('the token did not reach a node for 3 s');
            c.at = s0.token.at[0];
            c.g0 = ev(s0, 'cartouche.regenerated');
            c.t0 = viz.timeMs();
            viz.crash(c.at);
          },
          until: (s, c) => ev(s, 'cartouche.regenerated') > c.g0,
          max_ms: 20000,
          answer: (s, c) => {
            if (ev(s, 'cartouche.regenerated') <= c.g0) return 'never';
            c.dt = viz.timeMs() - c.t0;
            return c.dt <= lossTimeoutMs(s.nodes.length) + 500 ? 'soon' : 'long';
          },
          why: (s, c) => (c.dt != null
            ? `A new token after ${secs(c.dt)}. A node that stops seeing the token waits the loss timeout (a lease plus two circulations of the ring: about ${secs(lossTimeoutMs(s.nodes.length))} for ${s.nodes.length} members), asks for pre-votes ("does it look lost to you too?"), then asks every member to promise a higher generation; with ${majority(s.nodes.length)} promises it creates the token.`
            : 'No new token within 20 s.'),
        },
        hl: (s, c) => ({ nodes: c.at != null ? [c.at] : s.token.at, kinds: ['cartouche.pre_vote', 'cartouche.prepare', 'cartouche.promise'] }),
      },
      {
        text: () => 'A generation works like a ballot: the new token\'s generation was promised by a majority, and a node that promised it rejects every message of a lower generation. If the old token turned up, it would be discarded, and it could not grant anyway: a majority would have to accept its old fencing number.',
        hl: (s) => ({ nodes: tokenNodes(s) }),
      },
      {
        setup: (v) => { settle(v); },
        enter: (s, c) => {
          const tok = tokenNodes(s);
          const up = upIds(s);
          c.minority = up.filter((i) => !tok.includes(i)).slice(0, Math.floor((up.length - 1) / 2));
          c.rest = otherNodes(s, c.minority);
        },
        predict: {
          q: (s, c) => `The page will cut nodes ${c.minority.join(' and ')} off from the other ${c.rest.length} (the side with the token). Will the minority side regenerate the token?`,
          options: () => [['yes', 'yes, after the loss timeout'], ['no', 'no']],
          run: (c) => { c.t0 = viz.timeMs(); viz.partition(groups(c.minority, c.rest)); },
          until: (s, c) => viz.timeMs() - c.t0 >= lossTimeoutMs(s.nodes.length) * 1.5 + 1000,
          max_ms: 20000,
          answer: (s, c) => (tokenNodes(s).some((i) => c.minority.includes(i)) ? 'yes' : 'no'),
          why: (s, c, a) => (a === 'no'
            ? `No: ${c.minority.length} of ${s.nodes.length} nodes cannot collect a majority (${majority(s.nodes.length)}) of pre-votes, let alone of promises. They ask, hear too few answers and wait; thanks to the pre-vote they do not even raise anyone's generation.`
            : 'The minority side has a token: that should not happen. Please report this link.'),
        },
        hl: (s, c) => ({ nodes: c.minority }),
      },
      {
        setup: (v) => { settle(v); const s = JSON.parse(v.stateJson()); const tok = tokenNodes(s); const m = upIds(s).filter((i) => !tok.includes(i)).slice(0, 2); v.partition(groups(m, otherNodes(s, m))); v.advance(5000, 0); },
        text: () => 'Heal the network. The majority\'s token carries on; the minority never changed anyone\'s state (a pre-vote changes nothing), so healing disturbs nothing.',
        hl: () => ({ panel: 'heal' }),
        check: (s) => !s.partitioned,
      },
      {
        enter: (s, c) => { const tok = tokenNodes(s); c.m = upIds(s).slice().reverse().find((i) => !tok.includes(i)); },
        predict: {
          q: (s, c) => `The page will cut node ${c.m} off alone and request the token there. Will node ${c.m} get a grant while it is cut off?`,
          options: () => [['yes', 'yes'], ['no', 'no']],
          run: (c) => { c.t0 = viz.timeMs(); c.got = false; viz.partition(groups([c.m], otherNodes(JSON.parse(viz.summaryJson()), [c.m]))); viz.request(c.m); },
          watch: (s, c) => { if (s.nodes[c.m].holding) c.got = true; },
          until: (s, c) => c.got || viz.timeMs() - c.t0 >= 5000,
          max_ms: 6000,
          answer: (s, c) => (c.got ? 'yes' : 'no'),
          why: (s, c, a) => (a === 'no'
            ? `No. Its request waits for the token, which cannot reach it; and a token there could not grant either, since a grant needs ${majority(s.nodes.length)} members to accept its fencing number.`
            : 'It got a grant while cut off: one_token_holder should say whether that broke anything. Please report this link.'),
        },
        hl: (s, c) => ({ nodes: [c.m] }),
      },
      {
        setup: (v) => { settle(v); const s = JSON.parse(v.stateJson()); const tok = tokenNodes(s); const m = upIds(s).slice().reverse().find((i) => !tok.includes(i)); v.partition(groups([m], otherNodes(s, [m]))); v.request(m); v.advance(4000, 0); },
        enter: (s, c) => { c.m = (s.nodes.find((n) => n.up && n.pending > 0) || {}).id; },
        text: (s, c) => `Heal the network. Node ${c.m ?? 'the cut-off node'} still wants the lock: its request is still pending, so the token brings it the grant when it next comes by (or comes straight over if idle: the Want shortcut).`,
        hl: (s, c) => ({ nodes: c.m != null ? [c.m] : [], panel: 'heal' }),
        check: (s, b) => !s.partitioned && ev(s, 'cartouche.granted') > ev(b, 'cartouche.granted'),
      },
      {
        text: () => 'The one_token_holder invariant (Invariants panel) watches all this: at most one running node holds a valid grant at any time. The challenge asks you to break it.',
        hl: () => ({ panel: 'invariants' }),
      },
    ],
    challenge: {
      title: 'Make two nodes hold the token at the same time',
      text: 'Partition, drop the token, crash holders, request the token on both sides, add loss. The one_token_holder invariant is the referee. Press "I\'m done" when you have tried.',
      start: (s, c) => { c.t0 = s.time_us; c.g = ev(s, 'cartouche.granted'); c.r = ev(s, 'cartouche.regenerated'); c.d = ev(s, 'cartouche.token_discarded'); c.c = ev(s, 'cartouche.candidate'); },
      finish: () => {},
      until: () => true,
      max_ms: 500,
      explain: (s, c) => {
        const i = inv(s, 'one_token_holder');
        if (i.first_violation_us != null && i.first_violation_us >= c.t0) {
          const skewed = /:skew:/.test(s.script);
          return {
            bad: true,
            text: `one_token_holder was violated at ${fmt(i.first_violation_us)}: two nodes held grants at once.` + (skewed
              ? ' You stepped a clock: leases assume clock rates within 10% (fencing numbers still order the holders, so a guarded resource refuses the older one). Without clock steps this would be a bug.'
              : ' That is a bug: please report it with this page\'s link.'),
          };
        }
        return {
          text: `No: at most one node held a grant at any time. Since you started: ${ev(s, 'cartouche.granted') - c.g} grant(s), ${ev(s, 'cartouche.regenerated') - c.r} new token(s), ${ev(s, 'cartouche.candidate') - c.c} candidacies, ${ev(s, 'cartouche.token_discarded') - c.d} stale token copies discarded. Every grant needed a majority to accept its fencing number, and two majorities always share a member, which accepts each number once. A new token needs a majority of promises, and a member that accepted the last grant promises only after that grant's lease has run out.`,
        };
      },
    },
  },

  ouroboros: {
    title: 'Ouroboros: the Shen log',
    world: 'seed=4&nodes=5&rings=sundial,cartouche,ouroboros',
    fits: (s) => !!s.log && s.nodes.length >= 4,
    steps: [
      {
        enter: (s, c) => { c.p = viz.logPartition(); },
        text: (s, c) => `The Shen log is split into ${s.log.partitions} partitions; each is a chain of nodes, head → middle → tail (the cyan arrows, marked H, M and T, for the partition picked in the log panel). Partition ${c.p}'s chain: ${logChain(s, c.p).join(' → ')}.`,
        hl: (s, c) => ({ nodes: logChain(s, c.p), panel: 'log' }),
      },
      {
        text: () => 'Type a key in the log panel and press Append.',
        hl: () => ({ panel: 'logui' }),
        check: (s, b) => s.log.acked > b.log.acked,
      },
      {
        enter: (s, c) => { c.p = viz.logPartition(); },
        text: () => 'The client sent the record to the head (client_append). The head gave it the next offset and sent it down the chain (append, cyan dots); the tail committed it and the commit point came back up (ack, purple). Only then did the head answer the client: "acknowledged" means every member of the chain has it.',
        hl: (s, c) => ({ nodes: logChain(s, c.p), kinds: ['ouroboros.client_append', 'ouroboros.append', 'ouroboros.ack', 'ouroboros.append_reply'] }),
      },
      {
        enter: (s, c) => { c.p = viz.logPartition(); c.chain = logChain(s, c.p); c.client = logClientOff(s, c.chain); },
        predict: {
          q: (s, c) => `The page will read partition ${c.p} from node ${c.client}. Which node of the chain answers the read?`,
          options: (s, c) => c.chain.map((id, i) => [id, `node ${id} (${roleName(i, c.chain.length)})`]),
          run: (c) => { c.server = null; c.ops = JSON.parse(viz.summaryJson()).log.ops.length; viz.read(c.client, c.p); },
          watch: (s, c) => { const m = s.messages && s.messages.find((x) => x.ring === 'ouroboros' && x.what === 'client_read'); if (m) c.server = m.to; },
          until: (s, c) => s.log.ops.length > c.ops && s.log.ops[c.ops].outcome.state !== 'pending',
          max_ms: 5000,
          answer: (s, c) => c.server,
          why: (s, c, a) => `Node ${a}, the tail${a === c.chain.at(-1) ? '' : ' (the chain changed meanwhile)'}. The tail holds only committed records, so whatever it returns was acknowledged; before answering it checks with the others that its epoch is still the newest (check, check_reply), so a replaced chain never serves a read.`,
        },
        hl: (s, c) => ({ nodes: c.result != null ? [c.result] : c.chain, kinds: ['ouroboros.client_read', 'ouroboros.read_reply', 'ouroboros.check', 'ouroboros.check_reply'] }),
      },
      {
        setup: (v) => { settle(v); const s = JSON.parse(v.stateJson()); const p = v.partitionOfKey('k1'); v.setLogPartition(p); v.append(logClientOff(s, logChain(s, p)), 'k1'); v.advance(1500, 0); },
        enter: (s, c) => {
          c.p = viz.logPartition(); c.chain = logChain(s, c.p); c.head = c.chain[0];
          c.client = logClientOff(s, c.chain);
        },
        predict: {
          q: (s, c) => `The page will crash node ${c.head}, the head of partition ${c.p}'s chain, which holds ${ackedOn(s, c.p).length} acknowledged record(s)${ackedOn(s, c.p).length ? '' : ' (the page appends one first)'}, then read the partition once the chain is rebuilt. Will every acknowledged record still be there?`,
          options: () => [['yes', 'yes'], ['no', 'no, some are lost']],
          run: (c) => {
            let s0 = JSON.parse(viz.summaryJson());
            if (!ackedOn(s0, c.p).length) { viz.append(c.client, 'k1'); viz.advance(1500, 0); s0 = JSON.parse(viz.summaryJson()); }
            c.acked = ackedOn(s0, c.p).map((o) => o.data);
            c.r0 = ev(s0, 'ouroboros.reconfig_done');
            c.read = null;
            viz.crash(c.head);
          },
          watch: (s, c) => {
            if (c.read == null && ev(s, 'ouroboros.reconfig_done') > c.r0 && !logChain(s, c.p).includes(c.head)) {
              c.read = s.log.ops.length;
              c.client = logClientOff(s, logChain(s, c.p));
              viz.read(c.client, c.p);
            }
          },
          until: (s, c) => c.read != null && s.log.ops.length > c.read && s.log.ops[c.read].outcome.state !== 'pending',
          max_ms: 25000,
          answer: (s, c) => {
            const o = c.read != null ? s.log.ops[c.read] : null;
            c.got = o && o.outcome.state === 'read' ? o.outcome.records.map(([, d]) => d) : [];
            return c.acked.every((d) => c.got.includes(d)) ? 'yes' : 'no';
          },
          why: (s, c, a) => (a === 'yes'
            ? `Yes: the read returned ${c.got.length} record(s), every acknowledged one among them (${c.acked.join(', ')}). When they were acknowledged every member had them, and the survivors of the chain still do.`
            : `The read returned ${JSON.stringify(c.got)} for acknowledged ${JSON.stringify(c.acked)}: watch no_lost_ack.`),
        },
        hl: (s, c) => ({ nodes: c.read != null ? logChain(s, c.p) : [c.head], panel: 'logui' }),
      },
      {
        setup: (v) => { settle(v); const s = JSON.parse(v.stateJson()); const p = v.partitionOfKey('k1'); v.setLogPartition(p); v.append(logClientOff(s, logChain(s, p)), 'k1'); v.advance(1500, 0); v.crash(logChain(s, p)[0]); v.advance(12000, 0); },
        enter: (s, c) => { c.p = viz.logPartition(); c.dead = (s.nodes.find((n) => !n.up) || {}).id; },
        text: (s, c) => `How: Sundial declared node ${c.dead ?? 'the head'} dead; the node holding the Cartouche token ran a Paxos round (prepare, promise, accept, accepted, commit: grey dots) with its fencing number as the ballot, and installed a new table of chains. Partition ${c.p}'s chain is now ${logChain(s, c.p).join(' → ')}, epoch ${s.log.chains[c.p].epoch.join('.')}. The promises carried the survivors' logs, so the new chain keeps every acknowledged record.`,
        hl: (s, c) => ({ nodes: logChain(s, c.p), panel: 'log' }),
      },
      {
        setup: (v) => { settle(v); const s = JSON.parse(v.stateJson()); const p = v.partitionOfKey('k1'); v.setLogPartition(p); v.crash(logChain(s, p)[0]); v.advance(12000, 0); },
        enter: (s, c) => { c.dead = (s.nodes.find((n) => !n.up) || {}).id; },
        text: (s, c) => (c.dead != null
          ? `Restart node ${c.dead} (double-click it). It rejoins the cluster; a crash keeps what the node wrote to its disk (Power loss in the Node panel would lose what was not yet synced).`
          : 'Every node is running: go on.'),
        hl: (s, c) => ({ nodes: c.dead != null ? [c.dead] : [] }),
        check: (s, b, c) => c.dead == null || s.nodes[c.dead].up,
      },
      {
        enter: (s, c) => { c.p = viz.logPartition(); c.chain = logChain(s, c.p); c.tail = c.chain.at(-1); },
        predict: {
          q: (s, c) => `The page will cut node ${c.tail}, the tail of partition ${c.p}, off from the rest and append a record there. Will the append be acknowledged?`,
          options: () => [['at_once', 'yes, at once'], ['rebuilt', 'yes, once a new chain without the tail is installed'], ['heal', 'no, not until the network heals']],
          run: (c) => {
            const s0 = JSON.parse(viz.summaryJson());
            c.r0 = ev(s0, 'ouroboros.reconfig_done');
            c.rAt = null;
            viz.partition(groups([c.tail], otherNodes(s0, [c.tail])));
            c.op = s0.log.ops.length;
            viz.append(logClientOff(s0, [...c.chain]), $('logkey').value.trim() || 'k1');
          },
          watch: (s, c) => { if (c.rAt == null && ev(s, 'ouroboros.reconfig_done') > c.r0) c.rAt = viz.timeMs(); },
          until: (s, c) => s.log.ops.length > c.op && s.log.ops[c.op].outcome.state !== 'pending',
          max_ms: 25000,
          answer: (s, c) => {
            const o = s.log.ops[c.op];
            if (!o || o.outcome.state !== 'acked') return 'heal';
            return c.rAt != null ? 'rebuilt' : 'at_once';
          },
          why: (s, c, a) => (a === 'rebuilt'
            ? `Yes, once partition ${c.p}'s chain was ${logChain(s, c.p).join(' → ')}: with the tail cut off nothing could commit, so the head waited. The majority side declared the tail dead and installed a new chain; the record was acknowledged on it. Meanwhile the cut-off tail cannot check that its epoch is still the newest, so it serves no reads.`
            : a === 'at_once' ? 'It was acknowledged without a new chain: the tail was reachable after all.' : 'Not acknowledged within 25 s.'),
        },
        hl: (s, c) => ({ nodes: [c.tail] }),
      },
      {
        text: () => 'Heal the network.',
        hl: () => ({ panel: 'heal' }),
        check: (s) => !s.partitioned,
      },
      {
        setup: (v) => { settle(v); for (const k of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']) v.append(0, k); v.advance(1500, 0); },
        enter: (s, c) => { c.id = s.nodes.length; },
        predict: {
          q: (s, c) => `The log grows by adding nodes. The page will start node ${c.id}: it is not a member yet, so it asks the members to add it (intent messages, repeated until a committed table shows it added). Once it is a member, placement over the members wants it in some chains. How does a partition move onto it?`,
          options: () => [
            ['join_now', 'it joins the chain at once, empty, and catches up inside it'],
            ['copy_first', 'it first copies the partition as a learner, joins the chain once caught up, and then the replica placement no longer wants is dropped'],
            ['stop', 'the partition takes no appends while its records are copied over'],
          ],
          run: (c) => {
            c.id = viz.addNode();
            c.t0 = viz.timeMs();
            Object.assign(c, { p: null, memberAt: null, learnerAt: null, joinedAt: null, droppedAt: null, before: [], joined: [], after: [] });
          },
          watch: (s, c) => {
            const t = Math.round(viz.timeMs() - c.t0);
            if (c.memberAt == null && s.log.members.nodes.includes(c.id)) { c.memberAt = t; c.version = s.log.members.version; }
            if (c.p == null) {
              const part = s.log.chains.find((x) => x.learners.includes(c.id) || x.chain.includes(c.id));
              if (part) {
                c.p = part.partition;
                c.before = part.chain.slice();
                if (part.learners.includes(c.id)) c.learnerAt = t; else c.joinedAt = t;
                viz.setLogPartition(c.p);
              }
            }
            if (c.p == null) return;
            const chain = s.log.chains[c.p].chain;
            if (c.joinedAt == null && chain.includes(c.id)) c.joinedAt = t;
            if (c.joinedAt != null && !c.joined.length) c.joined = chain.slice();
            if (c.joinedAt != null && c.droppedAt == null && c.before.some((x) => !chain.includes(x))) {
              c.droppedAt = t;
              c.after = chain.slice();
            }
          },
          until: (s, c) => c.droppedAt != null,
          max_ms: 20000,
          answer: (s, c) => (c.p == null ? 'none' : c.learnerAt != null ? 'copy_first' : 'join_now'),
          why: (s, c, a) => {
            if (a === 'none') return `Node ${c.id} got no partition within 20 s (member: ${c.memberAt != null ? 'yes' : 'no'}).`;
            const dropped = c.after.length ? c.before.filter((x) => !c.after.includes(x)) : [];
            return `Node ${c.id} became a member ${c.memberAt} ms after it started (member set v${c.version}; the log panel lists the members). ` +
              (a === 'copy_first'
                ? `It was a learner of partition ${c.p} from ${c.learnerAt} ms: the tail sent it the records (append) and it reported how much it held (sync), with no part in acknowledgements or reads, so the chain ${c.before.join(' → ')} kept taking appends. `
                : `It joined partition ${c.p}'s chain directly (the partition was empty, so there was nothing to copy). `) +
              `At ${c.joinedAt} ms a configuration round made it a chain member (${c.joined.join(' → ')})` +
              (dropped.length
                ? `, and at ${c.droppedAt} ms another dropped node ${dropped.join(', ')}, whose replica Ankh placement over the members no longer wants: the chain is ${c.after.join(' → ')}.`
                : ' (the old replica was not dropped within 20 s).') +
              ' Only a few chains move at once, so the cluster never copies everything at the same time.';
          },
        },
        hl: (s, c) => ({ nodes: c.id < s.nodes.length ? [c.id] : [], kinds: ['ouroboros.intent', 'ouroboros.append', 'ouroboros.sync', 'ouroboros.accept', 'ouroboros.commit'] }),
      },
      {
        setup: (v) => { settle(v); v.addNode(); v.advance(8000, 0); },
        enter: (s, c) => { c.m = s.log.members; },
        text: (s, c) => `The member set is part of the table of chains: it is v${c.m.version} now, members ${c.m.nodes.join(', ')} (log panel and canvas). It changes one node at a time, each change in a configuration round of its own (the Paxos round that rebuilds chains, with a Cartouche grant's fencing number as the ballot), so two majorities of consecutive member sets always share a node. The What happened panel tells each node installing a member set; a message's explanation (hover a dot) tells what an intent asks for.`,
        hl: () => ({ panel: 'log', kinds: ['ouroboros.intent'] }),
      },
      {
        setup: (v) => { settle(v); v.addNode(); v.advance(8000, 0); },
        enter: (s, c) => { c.n = s.log.members.nodes.length; },
        text: () => 'Now the other way: click a node that is a member and press "Leave the log" in the Node panel (shen leave). It is marked leaving, its chains move to other members (learners again), it leaves the member set, and then the page stops it for good, like the process exiting once shen leave returns.',
        hl: () => ({ panel: 'inspect' }),
        check: (s, b) => s.log.gone.length > b.log.gone.length,
      },
      {
        text: () => 'Two invariants referee the log (Invariants panel): chain_prefix_order, the committed prefixes of a partition\'s replicas are prefixes of one log; and no_lost_ack, no replica commits another record where an acknowledged one is, and every acknowledged append is in the committed log of its chain\'s tail. Three copies survive two failures; crash all three members of a chain and the records wait on their disks until one comes back.',
        hl: () => ({ panel: 'invariants' }),
      },
    ],
    challenge: {
      title: 'Lose an acknowledged append',
      text: 'Append records, then crash, restart, partition, add loss, pause or power-cut nodes. no_lost_ack and chain_prefix_order are the referees. When you press "I\'m done", the page heals the network, sets the loss to 0 and waits until the log settles.',
      start: (s, c) => { c.t0 = s.time_us; c.r = ev(s, 'ouroboros.reconfig_done'); },
      finish: () => { const s = JSON.parse(viz.summaryJson()); if (s.partitioned) viz.heal(); if (s.loss > 0) viz.setLoss(0); },
      until: (s) => ['no_lost_ack', 'chain_prefix_order'].every((n) => inv(s, n).state === 'ok'),
      max_ms: 25000,
      explain: (s, c) => {
        const bad = ['no_lost_ack', 'chain_prefix_order'].map((n) => inv(s, n)).filter((i) => i.first_violation_us != null && i.first_violation_us >= c.t0);
        const allDown = s.log.chains.filter((p) => p.chain.length && p.chain.every((id) => !s.nodes[id].up)).map((p) => p.partition);
        if (bad.length) {
          const detail = bad.map((i) => `${i.name} at ${fmt(i.first_violation_us)}: ${i.detail}`).join('; ');
          return { bad: true, text: `Violated: ${detail}. ` + (/committed another record/.test(detail) || bad.some((i) => i.name === 'chain_prefix_order')
            ? 'A replica committed another record where an acknowledged one was: that is a bug. Please report it with this page\'s link.'
            : 'An acknowledged record was missing from its tail for longer than the bound. If every member of its chain was down (or lost unsynced writes to power cuts) that is the limit of three copies; otherwise it is a bug: please report this link.') };
        }
        if (!s.log.acked) return { text: 'Nothing was acknowledged, so nothing could be lost: append some records and try again.' };
        if (allDown.length) return { text: `Partition(s) ${allDown.join(', ')} have every chain member down: their records wait on the disks (a crash keeps them). no_lost_ack is ${inv(s, 'no_lost_ack').state}; restart a member and finish again.` };
        return {
          text: `No: all ${s.log.acked} acknowledged appends are in their tails' committed logs, and every replica's committed prefix agrees. Since you started the chains were rebuilt ${ev(s, 'ouroboros.reconfig_done') - c.r} time(s). A record is acknowledged only once every chain member has it; a new chain is chosen by a Paxos round whose promises carry the survivors' logs, in a new epoch, so it starts from what they hold; and a tail only serves reads after checking that its epoch is still the newest.`,
        };
      },
    },
  },
};

const lesson = { name: null, ix: 0, base: null, ctx: {}, passed: false, pick: null, result: null, mode: 'step', hlKey: '', panel: null };
let reveal = null; // { until, watch, max, t0, done, ctx } while the page shows an outcome

// `#...&lesson=NAME&step=N`: the world part and the lesson part.
function splitLessonHash(hash) {
  const world = [];
  let name = null;
  let step = null;
  for (const pair of hash.replace(/^#/, '').split('&').filter(Boolean)) {
    const [k, v] = pair.split('=');
    if (k === 'lesson') name = decodeURIComponent(v || '');
    else if (k === 'step') step = decodeURIComponent(v || '');
    else world.push(pair);
  }
  return { world: world.join('&'), name, step };
}

// A URL hash's world without its history (faults, t).
function worldOf(hash) {
  return splitLessonHash(hash).world.split('&').filter((p) => !/^(faults|t)=/.test(p)).join('&');
}

// The page's URL hash: the run, plus the lesson step being taught.
function pageHash() {
  let h = viz.urlHash();
  if (lesson.name) h += `&lesson=${lesson.name}&step=${lesson.mode === 'challenge' ? 'challenge' : lesson.ix + 1}`;
  return h;
}

// The teacher's link to this step: the lesson's world, fresh; the step's
// setup brings it to where the step begins.
function stepLink() {
  return `${location.origin}${location.pathname}#${worldOf(viz.urlHash())}&lesson=${lesson.name}&step=${lesson.mode === 'challenge' ? 'challenge' : lesson.ix + 1}`;
}

function lessonState() { return JSON.parse(viz.stateJson()); }

function setHighlight(h) {
  const key = JSON.stringify(h || {});
  if (key === lesson.hlKey) return;
  lesson.hlKey = key;
  const { panel, ...canvasPart } = h || {};
  try { viz.setHighlight(JSON.stringify(canvasPart)); } catch (e) { console.warn(`shen lesson: ${e.message}`); }
  if (lesson.panel !== (panel || null)) {
    if (lesson.panel && $(lesson.panel)) $(lesson.panel).classList.remove('lesson-hl');
    lesson.panel = panel || null;
    if (lesson.panel && $(lesson.panel)) $(lesson.panel).classList.add('lesson-hl');
  }
}

function lessonStep() { return LESSONS[lesson.name].steps[lesson.ix]; }

function para(text, cls) {
  const p = document.createElement('p');
  if (cls) p.className = cls;
  p.textContent = text;
  $('lessontext').appendChild(p);
  return p;
}

function lessonShow() {
  const L = LESSONS[lesson.name];
  $('lessontext').textContent = '';
  $('lessonnav').style.display = 'flex';
  $('lessonlink').hidden = false;
  $('lessonlink').href = stepLink();
  if (lesson.mode === 'challenge') { challengeShow(); lessonHighlight(lessonState()); return; }
  const st = lessonStep();
  const s = lessonState();
  const head = `${lesson.ix + 1}/${L.steps.length}. `;
  try {
    if (st.predict) {
      para(head + 'Predict: ' + st.predict.q(s, lesson.ctx), 'q');
      const opts = document.createElement('div');
      opts.id = 'lessonopts';
      for (const [v, label] of st.predict.options(s, lesson.ctx)) {
        const b = document.createElement('button');
        b.textContent = label;
        b.dataset.value = String(v);
        b.disabled = lesson.pick !== null;
        if (lesson.pick !== null && String(lesson.pick) === String(v)) b.classList.add('picked');
        b.onclick = () => predictPick(v);
        opts.appendChild(b);
      }
      $('lessontext').appendChild(opts);
      if (reveal) {
        const p = para('Watch… ', 'running');
        const skip = document.createElement('button');
        skip.id = 'lessonskip';
        skip.textContent = 'Skip to the outcome';
        skip.onclick = () => revealFinish(true);
        p.appendChild(skip);
      }
      if (lesson.result) para(lesson.result.text, lesson.result.right ? 'done right' : 'done wrong');
    } else {
      para(head + st.text(s, lesson.ctx));
      if (lesson.passed && st.check) para('You did it.', 'done');
    }
  } catch (e) {
    para(`${head}This step cannot be shown in this world (${e.message}).`, 'wrong');
    console.warn(e);
  }
  $('lessonnext').disabled = (!!st.check || !!st.predict) && !lesson.passed;
  $('lessonnext').textContent = lesson.ix + 1 < L.steps.length ? 'Next' : 'Challenge';
  $('lessonback').disabled = lesson.ix === 0;
  lessonHighlight(s);
}

function lessonHighlight(s) {
  if (!lesson.name) { setHighlight(null); return; }
  const L = LESSONS[lesson.name];
  let h = null;
  try {
    h = lesson.mode === 'challenge' ? (L.challenge.hl ? L.challenge.hl(s, lesson.ctx) : { panel: 'invariants' })
      : lessonStep().hl ? lessonStep().hl(s, lesson.ctx) : null;
  } catch (e) { h = null; }
  setHighlight(h);
}

function enterStep(ix) {
  lesson.ix = ix;
  lesson.mode = 'step';
  lesson.ctx = {};
  lesson.pick = null;
  lesson.result = null;
  lesson.passed = false;
  reveal = null;
  const s = lessonState();
  lesson.base = s;
  const st = lessonStep();
  try { if (st.enter) st.enter(s, lesson.ctx); } catch (e) { console.warn(`shen lesson: ${e.message}`); }
  history.replaceState(null, '', '#' + pageHash());
  lessonShow();
}

// Start lesson `name` at step `ix` (0-based) or its challenge; `setup`:
// run the step's setup first (a fresh world opened from a link).
function lessonStart(name, ix = 0, { setup = false, challenge = false } = {}) {
  const L = LESSONS[name];
  if (!L) { showError(`no lesson \`${name}\` (${Object.keys(LESSONS).join(', ')})`); return; }
  if (!L.fits(JSON.parse(viz.summaryJson()))) {
    // This world does not fit the lesson: open the lesson's own world
    // (the hashchange handler builds it, then comes back here).
    location.hash = `${L.world}&lesson=${name}&step=${challenge ? 'challenge' : ix + 1}`;
    return;
  }
  lesson.name = name;
  ix = Math.max(0, Math.min(ix, L.steps.length - 1));
  if (setup) {
    try {
      if (challenge) settle(viz);
      else (L.steps[ix].setup || settle)(viz);
    } catch (e) { showError(`lesson setup: ${e.message || e}`); }
    refreshPanels(true);
  }
  if (challenge) challengeStart(); else enterStep(ix);
}

function lessonStop() {
  lesson.name = null;
  reveal = null;
  setHighlight(null);
  $('lessontext').textContent = '';
  $('lessonnav').style.display = 'none';
  $('lessonlink').hidden = true;
  history.replaceState(null, '', '#' + pageHash());
}

// The lesson part of a hash just opened: start it there.
function lessonFromHash(hash) {
  const { world, name, step } = splitLessonHash(hash);
  if (!name) return;
  const L = LESSONS[name];
  if (!L) { showError(`bad link: no lesson \`${name}\` (${Object.keys(LESSONS).join(', ')})`); return; }
  const challenge = step === 'challenge';
  const n = challenge ? 1 : Number(step || '1');
  if (!challenge && !(Number.isInteger(n) && n >= 1 && n <= L.steps.length)) {
    showError(`bad link: lesson ${name} has steps 1 to ${L.steps.length}, got \`${step}\``);
    return;
  }
  // A link with a history (faults or t) replays it as it is; a fresh one
  // gets the step's setup.
  const fresh = !/(^|&)(faults|t)=/.test(world);
  lessonStart(name, n - 1, { setup: fresh, challenge });
}

function lessonCheck() {
  if (!lesson.name) return;
  const s = lessonState();
  lessonHighlight(s);
  if (lesson.mode === 'challenge') { challengeWatch(s); return; }
  const st = lessonStep();
  // A step about something that is not there yet (no node is down): read
  // the world again until it is.
  if (st.ready && !lesson.passed && lesson.pick === null && !reveal && !st.ready(lesson.ctx)) {
    try { st.enter(s, lesson.ctx); } catch (e) { /* shown as is */ }
    if (st.ready(lesson.ctx)) lessonShow();
  }
  if (st.check && !lesson.passed) {
    let ok = false;
    try { ok = st.check(s, lesson.base, lesson.ctx); } catch (e) { ok = false; }
    if (ok) {
      lesson.passed = true;
      lessonShow();
    }
  }
}

// ---- predictions: the learner picks, the page makes it happen and runs
// the world (REVEAL_SPEED× in the animation loop, or at once with Skip)
// until the step's condition, then compares with what actually happened.
function predictPick(v) {
  if (lesson.pick !== null || reveal) return;
  const p = lessonStep().predict;
  lesson.pick = v;
  setChoiceMode(false);
  const c = lesson.ctx;
  act(() => p.run(c));
  reveal = { p, c, t0: viz.timeMs(), done: false, kind: 'predict', wasPlaying: playing };
  setPlaying(false);
  lessonShow();
}

function revealStep(ms) {
  // Advance `ms` of virtual time in whole chunks (the rest is kept for
  // the next frame, so the outcome does not depend on the frame rate),
  // checking the step's condition after each; true when it is over.
  const r = reveal;
  r.budget = (r.budget || 0) + ms;
  while (r.budget >= REVEAL_CHUNK_MS) {
    r.budget -= REVEAL_CHUNK_MS;
    viz.advance(REVEAL_CHUNK_MS, 0);
    const s = JSON.parse(r.p.watch ? viz.stateJson() : viz.summaryJson());
    try { if (r.p.watch) r.p.watch(s, r.c); } catch (e) { console.warn(e); }
    let over = false;
    try { over = r.p.until(s, r.c); } catch (e) { over = true; }
    if (over || viz.timeMs() - r.t0 >= r.p.max_ms) return true;
  }
  return false;
}

function revealFinish(skip) {
  if (!reveal) return;
  const r = reveal;
  if (skip) {
    while (!revealStep(500)) { /* run to the end at once */ }
  }
  reveal = null;
  if (r.wasPlaying) setPlaying(true);
  history.replaceState(null, '', '#' + pageHash());
  refreshPanels(true);
  const s = lessonState();
  if (r.kind === 'challenge') { challengeExplain(s); return; }
  let actual = null;
  let text;
  try {
    actual = r.p.answer(s, r.c);
    r.c.result = actual;
    text = r.p.why(s, r.c, actual);
  } catch (e) {
    text = `The outcome could not be read (${e.message}).`;
  }
  const right = actual !== null && String(actual) === String(lesson.pick);
  const label = (r.p.options(lesson.base, r.c).find(([v]) => String(v) === String(actual)) || [null, String(actual)])[1];
  lesson.result = { right, actual, text: `${right ? 'You were right.' : `Not quite: the answer is “${label}”.`} ${text}` };
  lesson.passed = true;
  lessonShow();
}

function revealTick(dt) {
  if (!reveal) return;
  if (revealStep(dt * REVEAL_SPEED)) revealFinish(false);
}

// ---- challenges: the learner tries to break the ring with the page's
// faults; "I'm done" lets the page end the attempt (heal, settle) and
// the invariants say why it failed.
function challengeStart() {
  lesson.mode = 'challenge';
  lesson.ctx = {};
  lesson.result = null;
  lesson.pick = null;
  reveal = null;
  window.shen.lesson.verdict = null;
  const s = lessonState();
  lesson.base = s;
  LESSONS[lesson.name].challenge.start(s, lesson.ctx);
  history.replaceState(null, '', '#' + pageHash());
  lessonShow();
}

function challengeShow() {
  const ch = LESSONS[lesson.name].challenge;
  para(`Challenge: ${ch.title}.`, 'q');
  para(ch.text);
  if (reveal) para('The page is ending your attempt: the network is whole again, the world runs until the invariants settle…', 'running');
  if (lesson.result) para(lesson.result.text, lesson.result.bad ? 'done wrong' : 'done');
  if (!lesson.result && !reveal) {
    const b = document.createElement('button');
    b.id = 'challengedone';
    b.textContent = 'I\'m done: referee';
    b.onclick = challengeDone;
    $('lessontext').appendChild(b);
  }
  $('lessonnext').disabled = true;
  $('lessonnext').textContent = 'Next';
  $('lessonback').disabled = false;
}

function challengeWatch(s) {
  // A violation during the attempt is reported at once.
  const t0 = lesson.ctx.t0 || 0;
  const v = s.invariants.find((i) => i.state === 'violated' && i.first_violation_us != null && i.first_violation_us >= t0);
  if (v && !lesson.ctx.warned) {
    lesson.ctx.warned = true;
    para(`${v.name} is violated (${v.detail}). Press "I'm done" to hear what that means.`, 'wrong');
  }
}

function challengeDone() {
  if (reveal) return;
  const ch = LESSONS[lesson.name].challenge;
  setChoiceMode(false);
  act(() => ch.finish(lesson.ctx));
  reveal = { p: { until: ch.until, max_ms: ch.max_ms }, c: lesson.ctx, t0: viz.timeMs(), kind: 'challenge', wasPlaying: playing };
  setPlaying(false);
  lessonShow();
  // The page settles the world at once (the timeline keeps it to replay).
  revealFinish(true);
}

function challengeExplain(s) {
  const ch = LESSONS[lesson.name].challenge;
  let r;
  try { r = ch.explain(s, lesson.ctx); } catch (e) { r = { bad: true, text: `The referee failed: ${e.message}` }; }
  lesson.result = r;
  window.shen.lesson.verdict = r;
  lessonShow();
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
    history.replaceState(null, '', '#' + pageHash());
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
    if (!lesson.name || reveal) return;
    if (lesson.mode === 'step' && lesson.ix + 1 < LESSONS[lesson.name].steps.length) enterStep(lesson.ix + 1);
    else if (lesson.mode === 'step') challengeStart();
  };
  $('lessonback').onclick = () => {
    if (!lesson.name || reveal) return;
    if (lesson.mode === 'challenge') enterStep(LESSONS[lesson.name].steps.length - 1);
    else if (lesson.ix > 0) enterStep(lesson.ix - 1);
  };
  $('lessonchallenge').onclick = () => { if (lesson.name && !reveal) challengeStart(); };
  $('lessonclose').onclick = lessonStop;
  $('lessonlink').onclick = (e) => {
    e.preventDefault();
    const url = stepLink();
    $('lessonlink').href = url;
    navigator.clipboard?.writeText(url).catch(() => {});
    showNote(`link to this step copied: ${url}`);
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
    if ('#' + pageHash() === location.hash || sideBySide(location.hash.slice(1))) return;
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
    if (splitLessonHash(location.hash).name) lessonFromHash(location.hash);
    else if (lesson.name) lessonStop();
  });
  keyPart();
}

// sidebyside.js waits on this: one module instance for both files.
window.shenWasm = init();
await window.shenWasm;
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
  // The lesson being taught: name, step (0-based), mode ('step' or
  // 'challenge'), the step's context, the last prediction's outcome and
  // the challenge's verdict; steps(name): how many steps a lesson has.
  lesson: {
    get name() { return lesson.name; },
    get ix() { return lesson.ix; },
    get mode() { return lesson.mode; },
    get passed() { return lesson.passed; },
    get ctx() { return lesson.ctx; },
    get result() { return lesson.result; },
    get revealing() { return !!reveal; },
    get highlight() { return lesson.hlKey; },
    steps: (name) => LESSONS[name].steps.map((st) => (st.predict ? 'predict' : st.check ? 'check' : 'read')),
    link: () => stepLink(),
    verdict: null,
  },
};
wire();
{
  const addr = liveAddrOf(location.hash.slice(1));
  if (addr !== null) startLive(addr);
  else if (splitLessonHash(location.hash).name) lessonFromHash(location.hash);
}
requestAnimationFrame(tick);
