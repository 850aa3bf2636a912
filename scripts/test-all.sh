#!/usr/bin/env bash
# Run every test: the whole workspace's tests (one dev-profile build), the
# browser simulator's wasm32 build (scripts/build-viz.sh: wasm32 + the pinned
# wasm-bindgen CLI), the cross-target determinism check
# (scripts/wasm-determinism.mjs compares the trace hash of every scenario in
# scenarios/ for seeds 0..20 between the wasm module and the native
# `shen sim run`; needs Node.js >= 20), the wasm-bindgen tests of the
# exported API on wasm32 (scripts/test-wasm.sh: wasm-viz/tests/api.rs under
# wasm-bindgen-test-runner and Node.js), then the browser end-to-end test in
# Debian's headless Chromium (wasm-viz/e2e/e2e.mjs; SHEN_SKIP_E2E=1 skips).
#
#   scripts/test-all.sh [ARGS...]   ARGS go to `cargo test --workspace`,
#                                   e.g. `-- --nocapture`
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
if ! command -v rustup >/dev/null 2>&1 && [[ -x "$cargo_home/bin/cargo" ]]; then
    PATH="$cargo_home/bin:$PATH"
fi

start=$SECONDS
echo "==> [test-all] cargo test --workspace $*"
cargo test --workspace "$@" </dev/null
echo "==> [test-all] cargo test passed ($((SECONDS - start))s)"

# Fail early, before the wasm build, if the determinism check cannot run.
if ! command -v node >/dev/null 2>&1; then
    echo "==> [test-all] ERROR: node (Node.js >= 20) not found on PATH; it runs scripts/wasm-determinism.mjs" >&2
    exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
    echo "==> [test-all] ERROR: Node.js $(node --version) is too old for scripts/wasm-determinism.mjs (need >= 20)" >&2
    exit 1
fi

wasm_start=$SECONDS
echo "==> [test-all] wasm32 build + wasm-bindgen: scripts/build-viz.sh"
# Builds shen_wasm_viz.wasm (release), binds it for the page (wasm-viz/www/pkg)
# and for Node.js (target/viz-node); installs the pinned wasm-bindgen CLI if
# missing.
"$ROOT/scripts/build-viz.sh" >/dev/null
node_module="${CARGO_TARGET_DIR:-$ROOT/target}/viz-node/shen_wasm_viz.js"
if [[ ! -f $node_module ]]; then
    echo "==> [test-all] ERROR: scripts/build-viz.sh produced no $node_module" >&2
    exit 1
fi
echo "==> [test-all] wasm build passed ($((SECONDS - wasm_start))s)"

det_start=$SECONDS
# The native side of the comparison. `cargo test --workspace` already built
# it (the node crate's CLI tests run it), with the workspace's unified
# features. Only when ARGS narrowed the tests is it built here: a plain
# `cargo build -p shen-node` resolves features for that one package and
# rebuilds the libp2p stack (three minutes on two cores), so it is not run
# when the test build's binary is there.
shen_bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/shen"
if (($#)) || [[ ! -x $shen_bin ]]; then
    cargo build -p shen-node --bin shen </dev/null
fi
echo "==> [test-all] wasm determinism: node scripts/wasm-determinism.mjs $node_module"
node "$ROOT/scripts/wasm-determinism.mjs" "$node_module" --shen "$shen_bin" </dev/null
echo "==> [test-all] wasm determinism passed ($((SECONDS - det_start))s)"

echo "==> [test-all] wasm API: node wasm-viz/e2e/api.mjs $node_module"
node "$ROOT/wasm-viz/e2e/api.mjs" "$node_module" </dev/null

# wasm-bindgen tests (wasm-viz/tests/api.rs) built for wasm32 (release
# profile, sharing the page build's dependencies) and run by
# wasm-bindgen-test-runner under Node.js.
wbt_start=$SECONDS
echo "==> [test-all] wasm-bindgen tests: scripts/test-wasm.sh"
"$ROOT/scripts/test-wasm.sh" </dev/null
echo "==> [test-all] wasm-bindgen tests passed ($((SECONDS - wbt_start))s)"

# End to end in Debian's headless Chromium (playwright-core from npm, no
# downloaded browser). SHEN_SKIP_E2E=1 skips it (say, on a machine without
# apt); CI always runs it.
if [[ ${SHEN_SKIP_E2E:-0} == 1 ]]; then
    echo "==> [test-all] browser end-to-end test SKIPPED (SHEN_SKIP_E2E=1)"
else
    e2e_start=$SECONDS
    chromium_bin="${CHROMIUM:-/usr/bin/chromium}"
    if [[ ! -x $chromium_bin ]]; then
        echo "==> [test-all] $chromium_bin missing; installing Debian's chromium with apt-get"
        as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }
        apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
        { as_root "${apt[@]}" update && as_root "${apt[@]}" install -y --no-install-recommends chromium; } </dev/null \
            || { echo "==> [test-all] ERROR: cannot install chromium (set SHEN_SKIP_E2E=1 to skip the browser test)" >&2; exit 1; }
    fi
    if [[ ! -d $ROOT/wasm-viz/e2e/node_modules/playwright-core ]]; then
        echo "==> [test-all] npm ci (wasm-viz/e2e: playwright-core)"
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$ROOT/wasm-viz/e2e" --no-audit --no-fund </dev/null
    fi
    echo "==> [test-all] browser end-to-end: node wasm-viz/e2e/e2e.mjs"
    SHEN_BIN="$shen_bin" CHROMIUM="$chromium_bin" node "$ROOT/wasm-viz/e2e/e2e.mjs" </dev/null
    echo "==> [test-all] browser end-to-end passed ($((SECONDS - e2e_start))s)"
fi

echo "==> [test-all] all passed ($((SECONDS - start))s)"
