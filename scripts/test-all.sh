#!/usr/bin/env bash
# Run every test: the whole workspace's tests (one dev-profile build), then
# the wasm32 build check (scripts/build-wasm.sh, default crates).
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

wasm_start=$SECONDS
echo "==> [test-all] wasm32 build check: scripts/build-wasm.sh"
"$ROOT/scripts/build-wasm.sh"
echo "==> [test-all] wasm32 build passed ($((SECONDS - wasm_start))s)"

echo "==> [test-all] all passed ($((SECONDS - start))s)"
