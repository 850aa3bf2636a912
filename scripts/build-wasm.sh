#!/usr/bin/env bash
# Build Shen crates for wasm32-unknown-unknown.
#
#   scripts/build-wasm.sh [--check] [--release] [-p CRATE ...] [-- CARGO_ARGS...]
#
# Default crates: shen-rings, shen-transport-memory, shen-checks and
# shen-wasm-viz (those that are workspace members).
#
# Artifacts: after a build (not --check), the path of every .wasm module it
# produced (cdylib crates, e.g. shen_wasm_viz.wasm) is printed on stdout, one
# absolute path a line, and written to target/wasm-artifacts.txt (under
# CARGO_TARGET_DIR if set) the same way; all other output goes to stderr.
# The file is removed first, so it never names a stale module. Where they land:
#   rustup (a/b): target/wasm32-unknown-unknown/{debug,release}/CRATE.wasm
#   Debian (c):   target/wasm/wasm32-unknown-unknown/{debug,release}/CRATE.wasm
#
# Toolchain, first that works:
#   (a) rustup's toolchain already has the wasm32-unknown-unknown target
#       -> plain `cargo build --target wasm32-unknown-unknown`
#   (b) `rustup target add wasm32-unknown-unknown` succeeds within a timeout
#       -> plain cargo, as (a)
#   (c) Debian's rustc-web/cargo-web (+ rust-web-src, lld-19), installed with
#       apt-get if missing, building std from source with -Zbuild-std into
#       target/wasm (see /work/shared/notes/wasm-toolchain.md).
#
# Options:
#   -p, --package CRATE   crate to build (repeatable); must be a workspace member
#   --release             release profile (default: dev)
#   --check               `cargo check` instead of `cargo build` (no codegen)
#   --toolchain MODE      auto (default) | rustup (only a/b) | debian (only c)
#                         also settable as SHEN_WASM_TOOLCHAIN
#   --setup               only make a toolchain available (installing if
#                         needed), print which, and exit
#   -h, --help            this text
#   -- ARGS               passed to cargo unchanged
#
# Environment:
#   SHEN_WASM_TOOLCHAIN         see --toolchain
#   SHEN_WASM_RUSTUP_TIMEOUT    seconds for `rustup target add` (default 90)
#   SHEN_WASM_TARGET_DIR        target dir for path (c) (default target/wasm)
set -euo pipefail

TARGET=wasm32-unknown-unknown
DEFAULT_CRATES=(shen-rings shen-transport-memory shen-checks shen-wasm-viz)
DEBIAN_PKGS=(rustc-web cargo-web rust-web-src lld-19)
DEB_RUSTC=/usr/bin/rustc
DEB_RUSTDOC=/usr/bin/rustdoc
DEB_CARGO=/usr/bin/cargo
DEB_STD_SRC=/usr/lib/rustlib/src/rust/library
DEB_WASM_LD=/usr/lib/llvm-19/bin/wasm-ld

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[build-wasm] %s\n' "$*" >&2; }
die() { printf '[build-wasm] ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# ---------------------------------------------------------------- arguments
crates=()
profile_args=()
subcmd=build
mode="${SHEN_WASM_TOOLCHAIN:-auto}"
setup_only=0
extra=()
while (($#)); do
    case "$1" in
        -p|--package)
            (($# >= 2)) || die "$1 needs a crate name"
            crates+=("$2"); shift 2 ;;
        -p?*) crates+=("${1#-p}"); shift ;;
        --package=*) crates+=("${1#--package=}"); shift ;;
        --release) profile_args=(--release); shift ;;
        --check) subcmd=check; shift ;;
        --toolchain)
            (($# >= 2)) || die "--toolchain needs auto|rustup|debian"
            mode="$2"; shift 2 ;;
        --toolchain=*) mode="${1#--toolchain=}"; shift ;;
        --setup) setup_only=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
case "$mode" in auto|rustup|debian) ;; *) die "--toolchain must be auto, rustup or debian (got '$mode')" ;; esac

# rustup's bin dir may be missing from PATH in non-login shells (CI).
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
if ! command -v rustup >/dev/null 2>&1 && [[ -x "$cargo_home/bin/rustup" ]]; then
    PATH="$cargo_home/bin:$PATH"
fi

# ------------------------------------------------------------ helpers
# Minimum rustc for the workspace: its rust-version, else 1.85.
min_rust="$(sed -n 's/^[[:space:]]*rust-version[[:space:]]*=[[:space:]]*"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)"
min_rust="${min_rust:-1.85}"

version_ge() { # version_ge A B: A >= B (dotted numbers)
    [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root to run: $*"
    fi
}

# Why the Debian toolchain is unusable; empty output means usable.
debian_toolchain_problem() {
    local v
    if [[ ! -x $DEB_RUSTC ]]; then echo "$DEB_RUSTC missing"; return; fi
    v="$("$DEB_RUSTC" -V 2>/dev/null | awk '{print $2}')"
    v="${v%%-*}"
    if [[ -z $v ]] || ! version_ge "$v" "$min_rust"; then
        echo "$DEB_RUSTC is '${v:-unknown}', need >= $min_rust"; return
    fi
    [[ -x $DEB_CARGO ]] || { echo "$DEB_CARGO missing"; return; }
    [[ -x $DEB_RUSTDOC ]] || { echo "$DEB_RUSTDOC missing"; return; }
    [[ -f $DEB_STD_SRC/Cargo.lock ]] || { echo "std sources missing ($DEB_STD_SRC)"; return; }
    [[ -x $DEB_WASM_LD ]] || { echo "$DEB_WASM_LD missing"; return; }
    # -Zbuild-std needs the std sources of exactly this compiler.
    if command -v dpkg-query >/dev/null 2>&1; then
        local vr vs
        vr="$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null || true)"
        vs="$(dpkg-query -W -f='${Version}' rust-web-src 2>/dev/null || true)"
        if [[ -n $vr && -n $vs && $vr != "$vs" ]]; then
            echo "rustc-web $vr and rust-web-src $vs differ"; return
        fi
    fi
}

install_debian_toolchain() {
    command -v apt-get >/dev/null 2>&1 || die "no apt-get: cannot install ${DEBIAN_PKGS[*]}"
    say "installing ${DEBIAN_PKGS[*]} with apt-get (takes a few minutes)"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q
               -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    as_root "${apt[@]}" update </dev/null \
        || die "apt-get update failed"
    # Recommends (rust-web-llvm -> llvm-22, ~1 GB) are not needed: we link
    # with lld-19's wasm-ld directly.
    as_root "${apt[@]}" install -y --no-install-recommends "${DEBIAN_PKGS[@]}" </dev/null \
        || die "apt-get install ${DEBIAN_PKGS[*]} failed"
}

rustup_has_target() {
    rustup target list --installed 2>/dev/null | grep -qx "$TARGET"
}

# ------------------------------------------------------ choose a toolchain
path=""
if [[ $mode != debian ]]; then
    if ! command -v rustup >/dev/null 2>&1; then
        say "rustup not found"
    elif rustup_has_target; then
        path=rustup-installed
        say "path (a): rustup toolchain already has $TARGET"
    else
        t="${SHEN_WASM_RUSTUP_TIMEOUT:-90}"
        say "rustup has no $TARGET; trying 'rustup target add $TARGET' (timeout ${t}s)"
        if timeout -k 10 "$t" rustup target add "$TARGET" </dev/null && rustup_has_target; then
            path=rustup-added
            say "path (b): 'rustup target add' succeeded"
        else
            say "'rustup target add' failed or timed out"
        fi
    fi
    if [[ -z $path && $mode == rustup ]]; then
        die "no rustup $TARGET target and --toolchain rustup forbids the Debian fallback"
    fi
fi
if [[ -z $path ]]; then
    problem="$(debian_toolchain_problem)"
    if [[ -n $problem ]]; then
        say "Debian wasm toolchain not ready: $problem"
        install_debian_toolchain
        problem="$(debian_toolchain_problem)"
        [[ -z $problem ]] || die "Debian wasm toolchain still unusable after install: $problem"
    fi
    path=debian
    say "path (c): Debian $("$DEB_RUSTC" -V) with -Zbuild-std, linker $DEB_WASM_LD"
fi

if ((setup_only)); then
    say "toolchain ready (path: $path)"
    exit 0
fi

if [[ $path == debian ]]; then
    cargo_cmd=("$DEB_CARGO")
else
    cargo_cmd=(cargo)
fi

# ------------------------------------------------------------ which crates
# Workspace member package names, one per line.
workspace_members() {
    local json
    json="$("${cargo_cmd[@]}" metadata --no-deps --format-version 1 </dev/null)" \
        || die "cargo metadata failed: the workspace does not load (see above)"
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json,sys
m=json.load(sys.stdin); ids=set(m["workspace_members"])
print("\n".join(p["name"] for p in m["packages"] if p["id"] in ids))' <<<"$json"
    else
        # Package objects start with "name" followed by "version".
        grep -o '"name":"[^"]*","version"' <<<"$json" | sed 's/"name":"\([^"]*\)".*/\1/'
    fi
}
mapfile -t members < <(workspace_members)
((${#members[@]})) || die "could not list workspace members"
is_member() { local m; for m in "${members[@]}"; do [[ $m == "$1" ]] && return 0; done; return 1; }

if ((${#crates[@]} == 0)); then
    for c in "${DEFAULT_CRATES[@]}"; do
        if is_member "$c"; then crates+=("$c"); else say "default crate $c is not in the workspace yet; skipping"; fi
    done
    ((${#crates[@]})) || die "none of the default crates (${DEFAULT_CRATES[*]}) are workspace members"
else
    for c in "${crates[@]}"; do
        is_member "$c" || die "crate '$c' is not a workspace member (members: ${members[*]})"
    done
fi
pkg_args=()
for c in "${crates[@]}"; do pkg_args+=(-p "$c"); done

# ------------------------------------------------------------------ build
# The list of produced modules, in the main target dir whichever path builds.
artifacts_file="${CARGO_TARGET_DIR:-$ROOT/target}/wasm-artifacts.txt"
rm -f "$artifacts_file"

start=$SECONDS
if [[ $path == debian ]]; then
    # The Debian cargo must use the lock file exactly as committed (it is
    # written by rustup's cargo). Without one, let rustup's cargo create it
    # so both toolchains agree on it.
    lock_args=(--locked)
    if [[ ! -f Cargo.lock ]]; then
        if command -v rustup >/dev/null 2>&1 && cargo -V >/dev/null 2>&1; then
            say "no Cargo.lock; generating it with $(cargo -V)"
            cargo generate-lockfile </dev/null || die "cargo generate-lockfile failed"
        else
            say "no Cargo.lock and no rustup cargo; letting $DEB_CARGO create it (not --locked)"
            lock_args=()
        fi
    fi
    target_dir="${SHEN_WASM_TARGET_DIR:-$ROOT/target/wasm}"
    # shellcheck disable=SC2054  # the comma is part of the -Z value
    cmd=("$DEB_CARGO" "$subcmd" --target "$TARGET" -Zbuild-std=std,panic_abort
         "${lock_args[@]}" "${profile_args[@]}" "${pkg_args[@]}" "${extra[@]}")
    say "running (CARGO_TARGET_DIR=$target_dir): ${cmd[*]}"
    env RUSTC="$DEB_RUSTC" RUSTDOC="$DEB_RUSTDOC" RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$DEB_WASM_LD" \
        CARGO_TARGET_DIR="$target_dir" \
        "${cmd[@]}" </dev/null \
        || die "wasm32 $subcmd of ${crates[*]} failed (path: debian, $((SECONDS - start))s)"
    out_dir="$target_dir/$TARGET"
else
    cmd=(cargo "$subcmd" --target "$TARGET" "${profile_args[@]}" "${pkg_args[@]}" "${extra[@]}")
    say "running: ${cmd[*]}"
    "${cmd[@]}" </dev/null \
        || die "wasm32 $subcmd of ${crates[*]} failed (path: $path, $((SECONDS - start))s)"
    out_dir="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET"
fi
say "OK: wasm32 $subcmd of ${crates[*]} (path: $path, $((SECONDS - start))s, output under $out_dir)"

# ------------------------------------------------------------- artifacts
[[ $subcmd == build ]] || exit 0
profile_dir=debug
((${#profile_args[@]})) && profile_dir=release
# `--profile NAME` among the extra cargo args picks another output dir.
for ((i = 0; i < ${#extra[@]}; i++)); do
    case "${extra[i]}" in
        --profile) ((i + 1 < ${#extra[@]})) && profile_dir="${extra[i + 1]}" ;;
        --profile=*) profile_dir="${extra[i]#--profile=}" ;;
    esac
done
case "$profile_dir" in dev|test) profile_dir=debug ;; bench) profile_dir=release ;; esac
artifacts=()
for c in "${crates[@]}"; do
    # Only cdylib crates produce a module; the others build an rlib.
    f="$out_dir/$profile_dir/${c//-/_}.wasm"
    [[ -f $f ]] && artifacts+=("$f")
done
mkdir -p "$(dirname "$artifacts_file")"
if ((${#artifacts[@]})); then
    printf '%s\n' "${artifacts[@]}" >"$artifacts_file"
    for f in "${artifacts[@]}"; do
        say "wasm module: $f ($(($(stat -c %s "$f") / 1024)) KiB)"
    done
    printf '%s\n' "${artifacts[@]}"
else
    : >"$artifacts_file"
    say "no .wasm module produced (no cdylib among ${crates[*]})"
fi
say "module list: $artifacts_file"
