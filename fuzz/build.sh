#!/bin/sh
# Builds every target (release, debug assertions, no sanitizer: the crates are safe Rust) into fuzz/target.
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="$PWD/target"
exec nice -n 5 cargo +nightly fuzz build -O -a -s none --target-dir "$CARGO_TARGET_DIR" "$@"
