#!/usr/bin/env node
// Frame-time bench of the browser simulator in headless Chromium: a world
// of N nodes (default 500) animated for F frames through the page's
// window.shen.bench hook (advance + draw per requestAnimationFrame), and
// the page's gzipped size. A bench, not a test: prints figures, exits 1
// only if the page cannot run.
//
//   node wasm-viz/e2e/bench.mjs [--nodes 500] [--frames 300] [--speed 0.25]
//                               [--warmup-ms 20000] [--budget-ms 20]
//
// The world first runs --warmup-ms of virtual time (so the 500 nodes have
// joined and converged), then frames are measured with the page's frame
// budget (--budget-ms of simulation per frame; 0 = none, virtual time then
// keeps up with --speed whatever the cost).
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { WWW, launch, openPage, startServer } from './common.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const opts = {
  nodes: arg('nodes', 500),
  frames: arg('frames', 300),
  speed: arg('speed', 0.25),
  warmup_ms: arg('warmup-ms', 20000),
  budget_ms: arg('budget-ms', 20),
};
const server = await startServer();
let close = async () => {};
const errors = [];
try {
  const launched = await launch();
  const browser = launched.browser;
  close = launched.close;
  const page = await openPage(browser, server.url, 'seed=1&nodes=5', errors);
  const r = await page.evaluate((o) => window.shen.bench(o), opts);
  let gz = 0;
  for (const f of ['pkg/shen_wasm_viz_bg.wasm', 'pkg/shen_wasm_viz.js', 'app.js', 'index.html', 'style.css']) {
    gz += gzipSync(readFileSync(join(WWW, f)), { level: 9 }).length;
  }
  const out = {
    ...r,
    page_gzip_kib: Math.round(gz / 1024),
    chromium: browser.version(),
    machine: `${cpus().length} x ${cpus()[0].model}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
  };
  console.log(JSON.stringify(out, null, 2));
  console.log(`bench: ${r.nodes} nodes: ${r.fps.toFixed(1)} fps (frame work mean ${r.work_mean_ms.toFixed(2)} ms, ` +
    `p95 ${r.work_p95_ms.toFixed(2)} ms; ${r.fps >= 30 ? 'meets' : 'BELOW'} the 30 fps target); ` +
    `virtual time ran at ${r.virtual_speed.toFixed(3)}x (asked ${r.speed}x); page ${out.page_gzip_kib} KiB gzipped`);
  if (errors.length) console.log(`page errors: ${errors.join('; ')}`);
} finally {
  await close();
  server.stop();
}
