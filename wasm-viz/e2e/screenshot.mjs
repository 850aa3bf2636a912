#!/usr/bin/env node
// The README's screenshot: a live 8-node world a few seconds in, one node
// crashed, gossip and the token in flight.
//
//   node wasm-viz/e2e/screenshot.mjs [OUT]   (default docs/viz.png)
import { join } from 'node:path';
import { ROOT, launch, openPage, startServer } from './common.mjs';

const out = process.argv[2] || join(ROOT, 'docs/viz.png');
const server = await startServer();
let close = async () => {};
try {
  const launched = await launch();
  close = launched.close;
  const errors = [];
  const page = await openPage(launched.browser, server.url, 'seed=4&nodes=8', errors);
  await page.evaluate(() => { window.shen.play(false); window.shen.viz.advance(4000, 0); window.shen.viz.crash(5); });
  await page.evaluate(() => window.shen.viz.advance(1500, 0));
  const [x, y] = await page.evaluate(() => window.shen.viz.nodePos(2));
  const box = await page.locator('#canvas').boundingBox();
  await page.mouse.click(box.x + x, box.y + y);
  await page.evaluate(() => window.shen.play(true));
  await page.waitForTimeout(1500);
  await page.screenshot({ path: out });
  console.log(`screenshot: ${out}${errors.length ? ` (page errors: ${errors.join('; ')})` : ''}`);
} finally {
  await close();
  server.stop();
}
