// Causality across rings in the event log: clicking a line of "What
// happened" selects it as an effect; the page lists the chain of lines that
// likely caused it (crash → suspicion → death → the log's wish for the
// token → request → grant → configuration round → the new table of
// chains; or crash → candidacy → new token), marks them in the log, and
// draws them on the space-time diagram (pink rings and links, the effect in
// white). The chain comes from Rust (narrate.rs); selecting is view state
// only: the run and its trace hash never see it.
//
// Hook for tests: window.shenCauses = { select(id), clear(), selected,
// chain }.

const $ = (id) => document.getElementById(id);
const state = { selected: -1, chain: [] };

function viz() {
  return window.shen && window.shen.viz;
}

// Mark the chain's lines in the event log (it is rebuilt as lines arrive).
function mark() {
  const ids = new Set(state.chain.map((l) => String(l.id)));
  for (const li of $('narr').children) {
    const id = li.dataset.id;
    li.classList.toggle('effect', id === String(state.selected));
    li.classList.toggle('cause', id !== String(state.selected) && ids.has(id));
  }
}

function show() {
  const box = $('why');
  box.textContent = '';
  if (state.selected < 0) { box.hidden = true; return; }
  box.hidden = false;
  const title = document.createElement('b');
  title.textContent = state.chain.length > 1
    ? 'Why: the likely causes, oldest first (pink on the space-time diagram)'
    : 'Why: no earlier line explains this one';
  const ol = document.createElement('ol');
  for (const l of state.chain) {
    const li = document.createElement('li');
    if (l.id === state.selected) li.className = 'effect';
    const t = document.createElement('span');
    t.className = 't';
    t.textContent = (l.at_us / 1e6).toFixed(3);
    li.append(t, l.text);
    li.onclick = () => { window.shen.play(false); viz().seek(l.at_us / 1000); };
    ol.append(li);
  }
  const clear = document.createElement('button');
  clear.textContent = 'Clear';
  clear.onclick = () => select(-1);
  box.append(title, ol, clear);
}

function select(id) {
  const v = viz();
  if (!v) return [];
  state.selected = id;
  state.chain = id >= 0 ? JSON.parse(v.causesJson(id)) : [];
  if (id >= 0 && state.chain.length === 0) state.selected = -1;
  v.setCauses(state.selected);
  mark();
  show();
  return state.chain;
}

// Wait for app.js (it creates the world and the event log).
for (let i = 0; i < 600 && !(window.shen && window.shen.viz); i++) await new Promise((r) => setTimeout(r, 50));
$('narr').addEventListener('click', (e) => {
  const li = e.target.closest('li');
  if (li && li.dataset.id) select(Number(li.dataset.id));
});
new MutationObserver(mark).observe($('narr'), { childList: true });
// Another world: nothing is selected in it.
window.addEventListener('hashchange', () => { state.selected = -1; state.chain = []; show(); });
window.shenCauses = {
  select,
  clear: () => select(-1),
  get selected() { return state.selected; },
  get chain() { return state.chain; },
};
