#!/usr/bin/env bash
# Build the browser simulator: wasm-viz/www/pkg/ (the page's module and JS
# glue) and target/viz-node/ (the same module bound for Node.js, used by
# scripts/wasm-determinism.mjs).
#
#   scripts/build-viz.sh [--dev] [--setup]
#
# Steps:
#   1. scripts/build-wasm.sh --release -p shen-wasm-viz (rustup's wasm32
#      target first, else Debian's rustc-web with -Zbuild-std; it installs
#      what is missing).
#   2. The wasm-bindgen CLI of exactly the version of the `wasm-bindgen`
#      crate in Cargo.lock: used if on PATH (or in ~/.cargo/bin), else
#      installed with `cargo install wasm-bindgen-cli --version X --locked`
#      (falls back to an unlocked install if a locked dependency is missing
#      from the registry).
#   3. wasm-bindgen --target web -> wasm-viz/www/pkg/ (and the module
#      gzipped, pkg/shen_wasm_viz_bg.wasm.gz, which `shen viz` embeds),
#      wasm-bindgen --target nodejs -> target/viz-node/.
#
# Options:
#   --dev     dev profile instead of release (bigger, slower module)
#   --setup   only make the toolchain and the CLI available, then exit
#
# Prints the page directory (wasm-viz/www) on stdout; logs go to stderr.
# Serve it with `shen viz` (or any static server) and open the printed URL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[build-viz] %s\n' "$*" >&2; }
die() { printf '[build-viz] ERROR: %s\n' "$*" >&2; exit 1; }

profile=(--release)
setup_only=0
while (($#)); do
    case "$1" in
        --dev) profile=(); shift ;;
        --setup) setup_only=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
if [[ -d "$cargo_home/bin" && ":$PATH:" != *":$cargo_home/bin:"* ]]; then
    PATH="$cargo_home/bin:$PATH"
fi

# ------------------------------------------------------- wasm-bindgen CLI
# The version of the wasm-bindgen crate the lock file pins.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
[[ -n $want ]] || die "no wasm-bindgen package in Cargo.lock"

have_cli() { command -v wasm-bindgen >/dev/null 2>&1 && [[ "$(wasm-bindgen --version | awk '{print $2}')" == "$want" ]]; }
if have_cli; then
    say "wasm-bindgen CLI $want found ($(command -v wasm-bindgen))"
else
    if command -v wasm-bindgen >/dev/null 2>&1; then
        say "wasm-bindgen CLI is $(wasm-bindgen --version), need $want"
    fi
    jobs="${CARGO_BUILD_JOBS:-$(nproc)}"
    say "installing wasm-bindgen-cli $want (cargo install -j $jobs --locked; a few minutes)"
    if ! cargo install -j "$jobs" wasm-bindgen-cli --version "$want" --locked </dev/null; then
        say "locked install failed; trying without --locked"
        cargo install -j "$jobs" wasm-bindgen-cli --version "$want" </dev/null \
            || die "cargo install wasm-bindgen-cli --version $want failed"
    fi
    have_cli || die "wasm-bindgen $want still not on PATH after install"
fi

if ((setup_only)); then
    "$ROOT/scripts/build-wasm.sh" --setup
    exit 0
fi

# ------------------------------------------------------------ the module
modules="$("$ROOT/scripts/build-wasm.sh" "${profile[@]}" -p shen-wasm-viz)"
wasm="$(grep '/shen_wasm_viz\.wasm$' <<<"$modules" | head -n1 || true)"
[[ -n $wasm && -f $wasm ]] || die "scripts/build-wasm.sh produced no shen_wasm_viz.wasm"

pkg="$ROOT/wasm-viz/www/pkg"
node_pkg="${CARGO_TARGET_DIR:-$ROOT/target}/viz-node"
rm -rf "$pkg" "$node_pkg"
wasm-bindgen --target web --no-typescript --out-dir "$pkg" "$wasm" \
    || die "wasm-bindgen --target web failed"
wasm-bindgen --target nodejs --no-typescript --out-dir "$node_pkg" "$wasm" \
    || die "wasm-bindgen --target nodejs failed"

# The gzipped module `shen viz` embeds and sends to browsers (-n: no
# name or time in the header, so the same module gives the same bytes).
gzip -9 -n -k -f "$pkg/shen_wasm_viz_bg.wasm" || die "gzip of the module failed"

size() { stat -c %s "$1"; }
gz() { gzip -9 -c "$1" | wc -c; }
total=0
for f in "$pkg"/shen_wasm_viz_bg.wasm "$pkg"/shen_wasm_viz.js wasm-viz/www/app.js wasm-viz/www/index.html wasm-viz/www/style.css; do
    [[ -f $f ]] || continue
    total=$((total + $(gz "$f")))
done
say "page module: $pkg/shen_wasm_viz_bg.wasm ($(($(size "$pkg/shen_wasm_viz_bg.wasm") / 1024)) KiB, $(($(gz "$pkg/shen_wasm_viz_bg.wasm") / 1024)) KiB gzipped)"
say "page total (wasm + JS + HTML + CSS), gzipped: $((total / 1024)) KiB"
say "Node.js module: $node_pkg/shen_wasm_viz.js"
say "serve it: cargo run -p shen-node -- viz   (then open http://127.0.0.1:8080/); a shen built after this step embeds the page"
echo "$ROOT/wasm-viz/www"
