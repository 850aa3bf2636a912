// Shared by e2e.mjs and bench.mjs: start `shen viz` on a free port, launch
// Debian's Chromium through playwright-core (never a downloaded browser).
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const WWW = join(ROOT, 'wasm-viz/www');
export const SHEN = process.env.SHEN_BIN ||
  join(resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target'), 'debug/shen');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// `shen viz --port 0`: resolves to { url, stop() } once it prints its URL.
export function startServer() {
  return new Promise((ok, fail) => {
    const p = spawn(SHEN, ['viz', '--port', '0', '--dir', WWW], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => { p.kill(); fail(new Error(`shen viz printed no URL: ${out}${err}`)); }, 20_000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) { clearTimeout(timer); ok({ url: m[1], stop: () => p.kill() }); }
    });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => { clearTimeout(timer); fail(new Error(`shen viz exited (${code}): ${err.trim()}`)); });
  });
}

export async function launch() {
  // playwright-core gives Chromium a fresh temporary profile itself.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    close: () => browser.close(),
  };
}

// Open the page at `hash` and wait for its first frame.
export async function openPage(browser, url, hash, errors) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  await page.goto(`${url}#${hash}`);
  await page.waitForFunction(() => window.shen && window.shen.ready, null, { timeout: 30_000 });
  return page;
}
