#!/usr/bin/env bash
# Property-based tests of both HTTP APIs against their OpenAPI document (docs/openapi.json), with schemathesis
# from PyPI: a bus on the embedded broker (no RabbitMQ needed) with a pull mailbox, then `st run` against the
# ingress API (as an agency, tag `ingress`) and the admin API (tag `admin`). Fails on any 5xx, and on any
# response whose status, content type or body the document does not describe.
#
# schemathesis is installed once into target/schemathesis-venv (LT_SCHEMATHESIS_VENV to put it elsewhere).
# LT_SCHEMATHESIS_TIME bounds each run's fuzzing (seconds, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
venv=${LT_SCHEMATHESIS_VENV:-target/schemathesis-venv}
seconds=${LT_SCHEMATHESIS_TIME:-60}

log() { printf '[schemathesis] %s\n' "$*" >&2; }

if ! "$venv/bin/st" --version >/dev/null 2>&1; then
  log "installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'schemathesis>=4.32,<5'
fi

cargo build --quiet --bin lienthong

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http=$(free_port)
admin=$(free_port)
dir=$(mktemp -d)
bus_pid=""
cleanup() {
  if [ -n "$bus_pid" ]; then kill "$bus_pid" 2>/dev/null || true; wait "$bus_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/bus.toml" <<EOF
[bus]
broker_url = "memory://"
namespace = "schemathesis"
schemas_dir = "$repo/schemas"

[http]
listen = "127.0.0.1:$http"

[admin]
listen = "127.0.0.1:$admin"
token_env = "LT_ADMIN_TOKEN"

[state]
url = "sqlite://$dir/state.db?mode=rwc"

[[agencies]]
code = "000.00.00.H40"
name = "UBND tỉnh Nam Định"
token_env = "LT_TOKEN_H40"

[[agencies]]
code = "000.00.12.H40"
name = "Sở Tư pháp"
token_env = "LT_TOKEN_STP"
inbox = "stp-mailbox"

[[adapters]]
id = "stp-mailbox"
type = "mailbox"

[[routes]]
id = "to-stp"
types = ["dossier.submitted", "dossier.status-changed", "document.edxml", "document.status"]
deliver = ["stp-mailbox"]
EOF

export LT_TOKEN_H40=schemathesis-h40 LT_TOKEN_STP=schemathesis-stp LT_ADMIN_TOKEN=schemathesis-admin
RUST_LOG=warn target/debug/lienthong run --config "$dir/bus.toml" 2>"$dir/bus.log" &
bus_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break
  kill -0 "$bus_pid" 2>/dev/null || { cat "$dir/bus.log" >&2; exit 1; }
  sleep 0.1
done

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
status=0
run() {
  local tag=$1 port=$2 token=$3
  log "$tag API on 127.0.0.1:$port"
  "$venv/bin/st" run docs/openapi.json --url "http://127.0.0.1:$port" --include-tag "$tag" \
    --header "Authorization: Bearer $token" --checks "$checks" --max-time "$seconds" \
    --phases examples,coverage,fuzzing --workers 1 || status=1
}
run ingress "$http" "$LT_TOKEN_STP"
run admin "$admin" "$LT_ADMIN_TOKEN"
if ! kill -0 "$bus_pid" 2>/dev/null; then
  log "the bus died during the run:"; cat "$dir/bus.log" >&2; exit 1
fi
exit "$status"
