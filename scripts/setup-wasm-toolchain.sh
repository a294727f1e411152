#!/usr/bin/env bash
# Makes `cargo build --target wasm32-wasip2` work on a machine where rustup cannot download
# targets (only package registries reachable). Idempotent and quick when already done.
#
# Where rustup can download, this is simply `rustup target add wasm32-wasip2`, and that is
# what the script does first. Otherwise it builds the target's std offline from Debian's
# rustc sources (see ../shared/docs/wasm-toolchain.md) and links that toolchain into rustup
# as `cpis-wasm`.
#
# Prints, as its last line, the toolchain name to build Wasm with (for RUSTUP_TOOLCHAIN).
# CPIS_OFFLINE_TOOLCHAIN=1 skips rustup and always uses the offline build (to test that path).
set -euo pipefail

TOOLCHAIN=cpis-wasm
SYSROOT_LIB=/usr/lib/rustlib/wasm32-wasip2/lib
STAMP="$SYSROOT_LIB/.cpis-std-built"

log() { echo "setup-wasm-toolchain: $*" >&2; }

# 1. A rustup toolchain that already has the target needs nothing else.
if [ "${CPIS_OFFLINE_TOOLCHAIN:-0}" = 1 ]; then
  log "CPIS_OFFLINE_TOOLCHAIN=1: using the offline build"
elif rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  log "rustup's default toolchain has wasm32-wasip2"
  echo "$(rustup show active-toolchain | cut -d' ' -f1)"
  exit 0
elif [ ! -f "$STAMP" ] && timeout 60 rustup target add wasm32-wasip2 >/dev/null 2>&1; then
  log "installed wasm32-wasip2 with rustup"
  echo "$(rustup show active-toolchain | cut -d' ' -f1)"
  exit 0
fi

# 2. Debian's toolchain, with std for the target built from its sources.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need_pkgs=()
for p in rustc-web cargo-web rust-web-src wasi-libc lld-22; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# The stamp names the compiler and the recipe: a change to either rebuilds std.
RECIPE="$(/usr/bin/rustc --version); std with embedded bitcode"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$RECIPE" ]; then
  log "building std for wasm32-wasip2: $RECIPE (takes a few minutes)"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  mkdir -p "$scratch/src"
  printf '[package]\nname = "cpis_std_scratch"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "src/lib.rs"\n[profile.release]\npanic = "abort"\n' >"$scratch/Cargo.toml"
  echo '' >"$scratch/src/lib.rs"
  # Bitcode in std's rlibs lets the components' release profile (lto = true) link against them.
  (cd "$scratch" && RUSTC_BOOTSTRAP=1 RUSTUP_TOOLCHAIN= RUSTFLAGS="-C embed-bitcode=yes" PATH=/usr/bin:$PATH \
    /usr/bin/cargo build --quiet --release -Zbuild-std=std,panic_abort --target wasm32-wasip2)
  as_root mkdir -p "$SYSROOT_LIB/self-contained"
  # Replace, never add to, an earlier build: two copies of std are two candidates.
  as_root rm -f "$SYSROOT_LIB"/*.rlib
  for rlib in "$scratch"/target/wasm32-wasip2/release/deps/*.rlib; do
    case "$(basename "$rlib")" in libcpis_std_scratch-*) continue ;; esac
    as_root cp "$rlib" "$SYSROOT_LIB/"
  done
  as_root cp /usr/lib/wasm32-wasi/*.o /usr/lib/wasm32-wasi/*.a "$SYSROOT_LIB/self-contained/"
  echo "$RECIPE" | as_root tee "$STAMP" >/dev/null
fi

# wasm-component-ld runs `wasm-ld` from PATH.
command -v wasm-ld >/dev/null 2>&1 || as_root ln -sf /usr/bin/wasm-ld-22 /usr/local/bin/wasm-ld

rustup toolchain list | grep -q "^$TOOLCHAIN" || rustup toolchain link "$TOOLCHAIN" /usr
log "toolchain $TOOLCHAIN ready"
echo "$TOOLCHAIN"
