#!/usr/bin/env bash
# Makes sure the services the integration tests need are up: RabbitMQ (127.0.0.1:5672, guest/guest) and
# PostgreSQL (127.0.0.1:5432, trust auth), and the local three-node RabbitMQ cluster of the cluster failure
# tests (scripts/cluster.sh: 127.0.0.1:5681-5683, apart from the default node). Starts them if they are down;
# installs them if they are missing (Debian packages). Idempotent and quiet when everything is already running.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "RabbitMQ is not installed; installing rabbitmq-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  if port_open 5672 && timeout 60 rabbitmqctl await_startup >/dev/null 2>&1; then
    log "RabbitMQ is up"
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

ensure_rabbitmq
ensure_postgres
bash "$(dirname "$0")/cluster.sh" up
