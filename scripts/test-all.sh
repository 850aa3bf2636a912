#!/usr/bin/env bash
# Run every test: the whole workspace's tests (one dev-profile build), the
# wasm32 build (scripts/build-wasm.sh, default crates), then the cross-target
# determinism check: scripts/wasm-determinism.mjs compares the trace hash of
# every scenario in scenarios/ for seeds 0..20 between the wasm module
# (shen_wasm_viz.wasm) and the native `shen sim run` (needs Node.js >= 20).
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
echo "==> [test-all] wasm32 build: scripts/build-wasm.sh"
# It prints the path of each .wasm module it built on stdout.
wasm_modules="$("$ROOT/scripts/build-wasm.sh")"
wasm_module="$(grep '/shen_wasm_viz\.wasm$' <<<"$wasm_modules" | head -n1 || true)"
if [[ -z $wasm_module || ! -f $wasm_module ]]; then
    echo "==> [test-all] ERROR: scripts/build-wasm.sh reported no shen_wasm_viz.wasm (got: ${wasm_modules:-nothing})" >&2
    exit 1
fi
echo "==> [test-all] wasm32 build passed ($((SECONDS - wasm_start))s): $wasm_module"

det_start=$SECONDS
# The native side of the comparison. `cargo test` already built it (the node
# crate's CLI tests run it), unless ARGS narrowed the tests: then this builds
# it; otherwise it is a no-op.
cargo build -p shen-node --bin shen </dev/null
shen_bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/shen"
echo "==> [test-all] wasm determinism: node scripts/wasm-determinism.mjs $wasm_module"
node "$ROOT/scripts/wasm-determinism.mjs" "$wasm_module" --shen "$shen_bin" </dev/null
echo "==> [test-all] wasm determinism passed ($((SECONDS - det_start))s)"

echo "==> [test-all] all passed ($((SECONDS - start))s)"
