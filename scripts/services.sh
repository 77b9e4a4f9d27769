#!/usr/bin/env bash
# Makes sure the services the integration tests need are up: RabbitMQ (127.0.0.1:5672, guest/guest) and
# PostgreSQL (127.0.0.1:5432, trust auth), and the local three-node RabbitMQ cluster of the cluster failure
# tests (scripts/cluster.sh: 127.0.0.1:5681-5683, apart from the default node), and headless Chromium with
# chromedriver for the console's browser tests. Starts them if they are down; installs them if they are missing
# (Debian packages). Idempotent and quiet when everything is already running.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A node can hold its port open and still never answer (seen after its disk filled up: its quorum logs lost
# files and every connection stayed unread). Send the AMQP 0-9-1 header and wait for the server's first frame.
amqp_answers() {
  timeout 15 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672 && printf "AMQP\x00\x00\x09\x01" >&3 &&
    [ "$(head -c 1 <&3 | od -An -tu1 | tr -d " ")" = 1 ]' 2>/dev/null
}

ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "RabbitMQ is not installed; installing rabbitmq-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  if port_open 5672 && timeout 60 rabbitmqctl await_startup >/dev/null 2>&1 && amqp_answers; then
    log "RabbitMQ is up"
  elif port_open 5672 && ! amqp_answers; then
    log "RabbitMQ holds port 5672 but does not answer AMQP; restarting it"
    timeout 60 rabbitmqctl stop >/dev/null 2>&1 || pkill -9 -f 'beam.smp.*-sname rabbit@|beam.smp.*rabbit@localhost' || true
    for _ in $(seq 1 30); do port_open 5672 || break; sleep 1; done
    rabbitmq-server -detached || true
    timeout 180 rabbitmqctl await_startup
    amqp_answers || { log "RabbitMQ still does not answer AMQP on 5672"; exit 1; }
    log "RabbitMQ restarted"
  else
    log "RabbitMQ is down; starting it"
    rabbitmq-server -detached || true
    timeout 180 rabbitmqctl await_startup
    log "RabbitMQ started"
  fi
  # Quorum-queue at-least-once dead-lettering needs every stable feature flag (a fresh node has them).
  rabbitmqctl enable_feature_flag all >/dev/null 2>&1 || true
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! command -v psql >/dev/null 2>&1; then
    log "PostgreSQL is not installed; installing postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    log "PostgreSQL is up"
  else
    log "PostgreSQL is down; starting it"
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    pg_isready -h 127.0.0.1 -p 5432
  fi
  # The tests connect as `postgres` to database `test` without a password (trust on loopback).
  if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
    su postgres -c "psql -q -c 'create database test'" >/dev/null 2>&1 || true
  fi
}

# The console's browser tests (tests/ui_browser.rs) drive Debian's headless Chromium through chromedriver.
ensure_chromium() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    log "Chromium and chromedriver are installed"
  else
    log "Chromium or chromedriver is missing; installing chromium and chromium-driver"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}

ensure_rabbitmq
ensure_postgres
ensure_chromium
bash "$(dirname "$0")/cluster.sh" up
