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
rm -f target/test-reports/cluster.txt
cargo test --workspace --all-targets --no-fail-fast -- --test-threads="${LT_TEST_THREADS:-4}"
# What each cluster failure test saw (tests/cluster.rs), shown even though the tests passed.
if [[ -f target/test-reports/cluster.txt ]]; then
  echo "== cluster failure tests =="
  cat target/test-reports/cluster.txt
fi
cargo run --quiet --bin lienthong -- test --config config/quickstart.toml
cargo run --quiet --bin lienthong -- test --config config/example.toml
bash scripts/schemathesis.sh
