// From a failing seed to the picture, end to end (called from e2e.mjs): a
// scenario made in the page (a crash, a node paused for a minute) with an
// expectation that fails is run by `shen sim run`; the page link it prints
// opens the page (wasm) at the first invariant violation with the trace
// hash the line names, and the page run ends with the native trace hash.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHEN, openPage } from './common.mjs';

export async function seedLinkE2E(browser, url, errors, check) {
  console.log('from a failing seed to the picture');
  const p = await openPage(browser, url, 'seed=1&nodes=5', errors);
  const toml = await p.evaluate(() => {
    const v = window.shen.viz;
    window.shen.play(false);
    v.seek(800);
    v.crash(4);
    v.seek(1000);
    v.pause(2, 60000);
    v.seek(30000);
    return v.scenarioToml();
  });
  await p.close();
  const file = join(tmpdir(), `shen-seedlink-${process.pid}.toml`);
  writeFileSync(file, `${toml}\n[[expect]]\nevent = "cartouche.granted"\nmin = 1\n`);
  const run = spawnSync(SHEN, ['sim', 'run', '--scenario', file, '--seed', '6'], { encoding: 'utf8' });
  check(run.status === 1, `shen sim run fails the seed (exit ${run.status})`);
  const line = run.stdout.split('\n').find((l) => l.startsWith('page: ')) || '';
  const m = /^page: http:\/\/127\.0\.0\.1:8080\/#(\S+) .*views_converged at ([\d.]+) s; trace hash ([0-9a-f]{16}) there/.exec(line);
  check(!!m, `it prints a page link at the first violation (${line})`);
  if (!m) return;
  const [, hash, , there] = m;
  const native = /trace hash ([0-9a-f]{16})/.exec(run.stdout)[1];
  const q = await openPage(browser, url, hash, errors);
  const seen = await q.evaluate(() => {
    window.shen.play(false);
    const s = window.shen.summary();
    const t = s.invariants.find((i) => i.name === 'views_converged').first_violation_us;
    window.shen.viz.seek(t / 1000);
    const at = window.shen.summary();
    window.shen.viz.seek(30000);
    return { t, there: at.trace_hash, time: at.time_us, end: window.shen.summary().trace_hash };
  });
  const tm = /(?:^|&)t=(\d+)(?:\.(\d{1,3}))?(?:&|$)/.exec(hash);
  const tUs = Number(tm[1]) * 1000 + Number((tm[2] || '').padEnd(3, '0'));
  check(seen.t === tUs && seen.time === tUs, `the page opens at its first violation, ${tUs} µs (${JSON.stringify(seen)})`);
  check(seen.there === there, `with the trace hash the line names (${seen.there} = ${there})`);
  check(seen.end === native, `and the page's run ends with the native trace hash (${seen.end} = ${native})`);
}
