#!/usr/bin/env bash
# Builds the four CP-IS components for wasm32-wasip2 (release), as `spin build` does, with the
# toolchain that scripts/setup-wasm-toolchain.sh prepared.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain=$(scripts/setup-wasm-toolchain.sh | tail -n 1)
RUSTUP_TOOLCHAIN="$toolchain" cargo build --locked --target wasm32-wasip2 --release \
  -p cpis-submit -p cpis-query -p cpis-access-notify -p cpis-alert
ls -l target/wasm32-wasip2/release/cpis_{submit,query,access_notify,alert}.wasm
