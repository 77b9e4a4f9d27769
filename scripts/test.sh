#!/usr/bin/env bash
# The project's test command: bring up RabbitMQ and PostgreSQL if needed, then run every test of the
# workspace (unit tests beside the code, integration tests in tests/ against the real broker), then the
# benchmark in smoke mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
cargo test --workspace --all-targets --no-fail-fast -- --test-threads="${LT_TEST_THREADS:-4}"
