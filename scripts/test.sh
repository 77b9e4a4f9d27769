#!/usr/bin/env bash
# The project's test command: bring up RabbitMQ and PostgreSQL if needed, then run every test of the
# workspace (unit tests beside the code, integration tests in tests/ against the real broker), then the
# benchmark in smoke mode. Then the route tests shipped beside the configs (`lienthong test`, no broker), and
# schemathesis against both HTTP APIs and docs/openapi.json (scripts/schemathesis.sh; installs it from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
# The browser tests fail rather than skip when Chromium is missing: services.sh installed it.
export LT_REQUIRE_BROWSER=1
cargo test --workspace --all-targets --no-fail-fast -- --test-threads="${LT_TEST_THREADS:-4}"
cargo run --quiet --bin lienthong -- test --config config/quickstart.toml
cargo run --quiet --bin lienthong -- test --config config/example.toml
bash scripts/schemathesis.sh
