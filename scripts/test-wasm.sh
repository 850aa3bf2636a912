#!/usr/bin/env bash
# Run the wasm-bindgen tests of the browser simulator's exported API
# (wasm-viz/tests/api.rs) on wasm32-unknown-unknown, with
# wasm-bindgen-test-runner under Node.js (no browser).
#
#   scripts/test-wasm.sh [-- TEST_ARGS...]
#
# Steps:
#   1. scripts/build-viz.sh --setup: the wasm32 toolchain (rustup's target,
#      else Debian's rustc-web for -Zbuild-std, installed if missing) and
#      the wasm-bindgen CLI pinned to Cargo.lock, whose
#      wasm-bindgen-test-runner runs the tests.
#   2. cargo test --target wasm32-unknown-unknown -p shen-wasm-viz --test api
#      with CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner:
#        rustup's wasm32 target if the toolchain has it (plain cargo), else
#        Debian's /usr/bin/cargo with -Zbuild-std=std,panic_abort (the recipe
#        of scripts/build-wasm.sh).
#      Release profile, in the target dir of scripts/build-viz.sh's wasm32
#      build on the same path (its dependencies are reused);
#      SHEN_WASM_TEST_TARGET_DIR overrides it. Only that one test target is
#      built.
#
# Environment:
#   SHEN_WASM_TOOLCHAIN   auto (default) | rustup | debian, as for
#                         scripts/build-wasm.sh
#
# Needs Node.js on PATH. TEST_ARGS go to the test binary (a name filter).
set -euo pipefail

TARGET=wasm32-unknown-unknown
DEB_RUSTC=/usr/bin/rustc
DEB_RUSTDOC=/usr/bin/rustdoc
DEB_CARGO=/usr/bin/cargo
DEB_WASM_LD=/usr/lib/llvm-19/bin/wasm-ld
DEB_STD_SRC=/usr/lib/rustlib/src/rust/library

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[test-wasm] %s\n' "$*" >&2; }
die() { printf '[test-wasm] ERROR: %s\n' "$*" >&2; exit 1; }

test_args=()
while (($#)); do
    case "$1" in
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        --) shift; test_args=("$@"); break ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
if [[ -d "$cargo_home/bin" && ":$PATH:" != *":$cargo_home/bin:"* ]]; then
    PATH="$cargo_home/bin:$PATH"
fi
command -v node >/dev/null 2>&1 || die "node (Node.js) not found on PATH; wasm-bindgen-test-runner needs it"

start=$SECONDS
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
[[ -n $want ]] || die "no wasm-bindgen package in Cargo.lock"
runner_ok() {
    command -v wasm-bindgen-test-runner >/dev/null 2>&1 \
        && [[ "$(wasm-bindgen-test-runner --version | awk '{print $2}')" == "$want" ]]
}
mode="${SHEN_WASM_TOOLCHAIN:-auto}"
case "$mode" in auto|rustup|debian) ;; *) die "SHEN_WASM_TOOLCHAIN must be auto, rustup or debian (got '$mode')" ;; esac
# Which wasm32 toolchain is ready now: rustup (preferred), debian, or none.
pick_path() {
    if [[ $mode != debian ]] && command -v rustup >/dev/null 2>&1 \
        && rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
        echo rustup
    elif [[ $mode != rustup && -x $DEB_RUSTC && -x $DEB_RUSTDOC && -x $DEB_CARGO && -x $DEB_WASM_LD \
        && -f $DEB_STD_SRC/Cargo.lock ]]; then
        echo debian
    else
        echo none
    fi
}
path="$(pick_path)"
if [[ $path == none ]] || ! runner_ok; then
    # Install what is missing: the toolchain (scripts/build-wasm.sh's
    # choice) and the pinned CLI, which ships wasm-bindgen-test-runner.
    "$ROOT/scripts/build-viz.sh" --setup
    path="$(pick_path)"
fi
[[ $path != none ]] || die "no wasm32 toolchain (SHEN_WASM_TOOLCHAIN=$mode) after scripts/build-viz.sh --setup"
runner_ok || die "wasm-bindgen-test-runner $want not on PATH (cargo install wasm-bindgen-cli --version $want --locked)"
runner="$(command -v wasm-bindgen-test-runner)"

# Release profile in the target dir the page build (scripts/build-viz.sh)
# uses on the same path, so the wasm32 dependencies it compiled are reused:
# a dev-profile build in a dir of its own took two minutes of CI.
if [[ $path == rustup ]]; then
    default_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
else
    default_dir="${SHEN_WASM_TARGET_DIR:-$ROOT/target/wasm}"
fi
target_dir="${SHEN_WASM_TEST_TARGET_DIR:-$default_dir}"
test_cmd=(test --release --target "$TARGET" --locked -p shen-wasm-viz --test api)
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$runner"
export CARGO_TARGET_DIR="$target_dir"
if [[ $path == rustup ]]; then
    cmd=(cargo "${test_cmd[@]}")
    say "running (rustup $TARGET, CARGO_TARGET_DIR=$target_dir): ${cmd[*]}"
    "${cmd[@]}" -- "${test_args[@]}" </dev/null || die "wasm tests failed ($((SECONDS - start))s)"
else
    # shellcheck disable=SC2054  # the comma is part of the -Z value
    cmd=("$DEB_CARGO" "${test_cmd[@]}" -Zbuild-std=std,panic_abort)
    say "running (Debian $("$DEB_RUSTC" -V), CARGO_TARGET_DIR=$target_dir): ${cmd[*]}"
    env RUSTC="$DEB_RUSTC" RUSTDOC="$DEB_RUSTDOC" RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$DEB_WASM_LD" \
        "${cmd[@]}" -- "${test_args[@]}" </dev/null || die "wasm tests failed ($((SECONDS - start))s)"
fi
say "OK: wasm-bindgen tests passed (path: $path, $((SECONDS - start))s)"
