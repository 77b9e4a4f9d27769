#!/usr/bin/env bash
# A local three-node RabbitMQ cluster for the failure tests and for trying a clustered deployment on one
# machine, made from the machine's own `rabbitmq-server` (no Docker, no network namespaces).
#
#   bash scripts/cluster.sh up      # start (or finish starting) the three nodes and join them; idempotent
#   bash scripts/cluster.sh status  # one line per node: running or down, and the cluster's running members
#   bash scripts/cluster.sh down    # stop the three nodes and delete their data; idempotent
#   bash scripts/cluster.sh ctl lt2 stop_app   # rabbitmqctl -n lt2@localhost stop_app, with the cluster's cookie
#   bash scripts/cluster.sh kill lt2   # kill -9 that node's Erlang VM (a crash, not a shutdown); `up` restarts it
#
# Nodes lt1@localhost, lt2@localhost, lt3@localhost; AMQP on 127.0.0.1:5681, 5682, 5683 (guest/guest);
# Erlang distribution on 25681-25683; no plugins (so no management or Prometheus ports). Each node has its own
# config, data and log folders under $LT_CLUSTER_DIR (default /tmp/lienthong-cluster) and the three share an
# Erlang cookie kept there. The machine's default node (rabbit@localhost on 5672) is never addressed: every
# command here names one of the three nodes, and the default node's env file and config are not read.
set -euo pipefail

DIR="${LT_CLUSTER_DIR:-/tmp/lienthong-cluster}"
BIN="${LT_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}"
NODES=(lt1 lt2 lt3)
AMQP_PORTS=(5681 5682 5683)
HOST=localhost

log() { printf '[cluster] %s\n' "$*" >&2; }

# rabbitmqctl against one of our nodes, with our cookie (HOME) and without the default node's env file.
# ERL_CRASH_DUMP_SECONDS=0: a CLI that cannot start (no $DIR yet, so no cookie) exits without leaving an
# erl_crash.dump in the caller's working directory.
ctl() {
  local node=$1
  shift
  ERL_CRASH_DUMP_SECONDS=0 HOME="$DIR" RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf" "$BIN/rabbitmqctl" -n "$node@$HOST" -q "$@"
}

running() { ctl "$1" ping >/dev/null 2>&1; }

app_running() { ctl "$1" eval 'rabbit:is_running().' 2>/dev/null | grep -q true; }

prepare() {
  mkdir -p "$DIR"
  if [[ ! -f "$DIR/.erlang.cookie" ]]; then
    # One cookie for the three nodes and the CLI; not the default node's.
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$DIR/.erlang.cookie"
    chmod 400 "$DIR/.erlang.cookie"
  fi
  printf '%s\n' 'ERL_EPMD_ADDRESS=127.0.0.1' >"$DIR/rabbitmq-env.conf"
  printf '[].\n' >"$DIR/enabled_plugins"
  local i
  for i in 0 1 2; do
    local n=${NODES[$i]}
    mkdir -p "$DIR/$n/data" "$DIR/$n/log"
    cat >"$DIR/$n/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:${AMQP_PORTS[$i]}
loopback_users.guest = true
EOF
  done
}

start_node() {
  local i=$1
  local n=${NODES[$i]} port=${AMQP_PORTS[$i]}
  log "starting $n@$HOST (AMQP 127.0.0.1:$port, distribution $((port + 20000)))"
  (
    cd "$DIR"
    HOME="$DIR" \
      RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf" \
      RABBITMQ_NODENAME="$n@$HOST" \
      RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
      RABBITMQ_NODE_PORT="$port" \
      RABBITMQ_DIST_PORT="$((port + 20000))" \
      RABBITMQ_CONFIG_FILE="$DIR/$n/rabbitmq.conf" \
      RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/$n/advanced.config" \
      RABBITMQ_MNESIA_BASE="$DIR/$n/data" \
      RABBITMQ_LOG_BASE="$DIR/$n/log" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" \
      RABBITMQ_PLUGINS_EXPAND_DIR="$DIR/$n/plugins-expand" \
      RABBITMQ_PID_FILE="$DIR/$n/pid" \
      ERL_EPMD_ADDRESS=127.0.0.1 \
      ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}" \
      "$BIN/rabbitmq-server" -detached >"$DIR/$n/log/startup.out" 2>&1
  )
}

fail_node() {
  log "$1@$HOST did not start; see $DIR/$1/log"
  tail -20 "$DIR/$1/log/"*.log >&2 2>/dev/null || true
  exit 1
}

await_app() { ctl "$1" --timeout 120 await_startup >/dev/null 2>&1 || fail_node "$1"; }

member_of_cluster() {
  # Is $1 a running member of the cluster that lt1 sees?
  ctl "${NODES[0]}" eval 'rabbit_nodes:all_running().' 2>/dev/null | grep -qw "$1@$HOST"
}

join() {
  log "joining $1@$HOST to ${NODES[0]}@$HOST"
  ctl "$1" join_cluster "${NODES[0]}@$HOST" >>"$DIR/$1/log/join.out" 2>&1
  ctl "$1" start_app >>"$DIR/$1/log/join.out" 2>&1
}

up() {
  command -v "$BIN/rabbitmq-server" >/dev/null 2>&1 || {
    log "no RabbitMQ at $BIN (install rabbitmq-server, or set LT_RABBITMQ_BIN)"
    exit 1
  }
  prepare
  local i n
  for i in 0 1 2; do
    running "${NODES[$i]}" || start_node "$i"
  done
  # Apps stopped with stop_app are started together: a node waits in start_app for the peer that stopped
  # last, so one at a time could wait on a node not started yet.
  local pids=()
  for i in 0 1 2; do
    n=${NODES[$i]}
    if ! app_running "$n"; then
      ctl "$n" start_app >/dev/null 2>&1 &
      pids+=($!)
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  for i in 0 1 2; do
    await_app "${NODES[$i]}"
  done
  for i in 1 2; do
    n=${NODES[$i]}
    if ! member_of_cluster "$n"; then
      ctl "$n" stop_app >/dev/null
      ctl "$n" reset >/dev/null
      join "$n"
    fi
  done
  for i in 0 1 2; do
    await_app "${NODES[$i]}"
  done
  ctl "${NODES[0]}" enable_feature_flag all >/dev/null 2>&1 || true
  log "up: ${NODES[*]/%/@$HOST} on 127.0.0.1:${AMQP_PORTS[0]},${AMQP_PORTS[1]},${AMQP_PORTS[2]}"
}

down() {
  local i
  for i in 0 1 2; do
    local n=${NODES[$i]}
    if running "$n"; then
      log "stopping $n@$HOST"
      ctl "$n" stop >/dev/null 2>&1 || true
    fi
  done
  # A node whose distribution hung: end it by the pid it wrote (never by name).
  for i in 0 1 2; do
    local pidf="$DIR/${NODES[$i]}/pid"
    if [[ -f "$pidf" ]]; then
      local pid
      pid=$(cat "$pidf" 2>/dev/null || true)
      if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
  done
  if [[ -d "$DIR" ]]; then
    rm -rf "${DIR:?}/${NODES[0]}" "${DIR:?}/${NODES[1]}" "${DIR:?}/${NODES[2]}"
  fi
  log "down"
}

# kill -9 of one node's VM, found by the pid file it wrote and checked to be that node's beam before the
# signal (a stale pid file must never end an unrelated process).
kill_node() {
  local n=$1 pidf="$DIR/$1/pid" pid
  pid=$(cat "$pidf" 2>/dev/null || true)
  if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    log "$n@$HOST is not running (no live pid in $pidf)"
    return 1
  fi
  if ! tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$n@$HOST"; then
    log "pid $pid in $pidf is not $n@$HOST's VM; not killed"
    return 1
  fi
  kill -9 "$pid"
  local i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { log "killed $n@$HOST (pid $pid) with SIGKILL"; return 0; }
    sleep 0.1
  done
  log "$n@$HOST (pid $pid) still alive 10 s after SIGKILL"
  return 1
}

status() {
  local i up_count=0
  for i in 0 1 2; do
    local n=${NODES[$i]}
    if running "$n"; then
      if app_running "$n"; then
        echo "$n@$HOST running 127.0.0.1:${AMQP_PORTS[$i]}"
        up_count=$((up_count + 1))
      else
        echo "$n@$HOST app-stopped 127.0.0.1:${AMQP_PORTS[$i]}"
      fi
    else
      echo "$n@$HOST down 127.0.0.1:${AMQP_PORTS[$i]}"
    fi
  done
  if running "${NODES[0]}"; then
    echo "members: $(ctl "${NODES[0]}" eval 'rabbit_nodes:all_running().' 2>/dev/null | tr -d '\n ')"
  fi
  [[ $up_count -eq 3 ]]
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
kill)
  node=${2:?usage: $0 kill lt1|lt2|lt3}
  [[ " ${NODES[*]} " == *" $node "* ]] || { echo "not a node of this cluster: $node" >&2; exit 2; }
  kill_node "$node"
  ;;
ctl)
  node=${2:?usage: $0 ctl lt1|lt2|lt3 <rabbitmqctl args>}
  [[ " ${NODES[*]} " == *" $node "* ]] || { echo "not a node of this cluster: $node" >&2; exit 2; }
  shift 2
  ctl "$node" "$@"
  ;;
*)
  echo "usage: $0 up|down|status|kill NODE|ctl NODE ARGS..." >&2
  exit 2
  ;;
esac
