#!/usr/bin/env bash
# A three-member capstan store cluster on 127.0.0.1, for trying it out.
#   local-store.sh up      build (release) and start m1, m2, m3
#   local-store.sh status  endpoint status of every member
#   local-store.sh down    stop them (data stays in $DATA)
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA="${DATA:-$PWD/capstan-data}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
BIN="$CARGO_TARGET_DIR/release/capstan"
CLIENT_PORTS=(2379 22379 32379)
PEER_PORTS=(2380 22380 32380)
ENDPOINTS="127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
CLUSTER="m1=http://127.0.0.1:2380,m2=http://127.0.0.1:22380,m3=http://127.0.0.1:32380"

up() {
  need=()
  command -v clang >/dev/null || need+=(clang libclang-dev)  # RocksDB's bindings need libclang
  command -v etcdctl >/dev/null || need+=(etcd-client)       # the client the printed commands use
  if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  cargo build --release -p capstan
  mkdir -p "$DATA"
  for i in 0 1 2; do
    name="m$((i + 1))"
    if [ -f "$DATA/$name.pid" ] && kill -0 "$(cat "$DATA/$name.pid")" 2>/dev/null; then
      echo "$name already running"
      continue
    fi
    "$BIN" store --name "$name" --data-dir "$DATA/$name" \
      --listen-client-urls "http://127.0.0.1:${CLIENT_PORTS[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${PEER_PORTS[$i]}" \
      --initial-cluster "$CLUSTER" --initial-cluster-token local-store \
      >>"$DATA/$name.log" 2>&1 &
    echo $! >"$DATA/$name.pid"
  done
  for _ in $(seq 1 50); do
    if ETCDCTL_API=3 etcdctl --endpoints="$ENDPOINTS" endpoint health >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  echo
  echo "capstan store: three members on 127.0.0.1 (data and logs in $DATA)"
  echo "  etcdctl --endpoints=$ENDPOINTS member list -w table"
  echo "  etcdctl --endpoints=$ENDPOINTS put greeting hello"
  echo "  etcdctl --endpoints=$ENDPOINTS endpoint status -w table"
  echo "  $0 down"
}

down() {
  for name in m1 m2 m3; do
    if [ -f "$DATA/$name.pid" ]; then
      kill "$(cat "$DATA/$name.pid")" 2>/dev/null || true
      rm -f "$DATA/$name.pid"
    fi
  done
  echo "stopped (data kept in $DATA)"
}

status() {
  ETCDCTL_API=3 etcdctl --endpoints="$ENDPOINTS" endpoint status -w table
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
