#!/usr/bin/env bash
# A three-member capstan store cluster on 127.0.0.1, for trying it out.
#   local-store.sh up [--tls]  build (release) and start m1, m2, m3; with --tls,
#                              https with client certificates on client and peer
#                              URLs (certificates from `capstan certs create` in $DATA/pki)
#   local-store.sh status      endpoint status of every member
#   local-store.sh down        stop them (data stays in $DATA)
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA="${DATA:-$PWD/capstan-data}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
BIN="$CARGO_TARGET_DIR/release/capstan"
CLIENT_PORTS=(2379 22379 32379)
PEER_PORTS=(2380 22380 32380)
ENDPOINTS="127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
PKI="$DATA/pki"

# A cluster started with --tls stays TLS (its peer URLs are in its data).
scheme() { if [ -f "$DATA/tls" ]; then echo https; else echo http; fi; }
client_flags() {
  if [ -f "$DATA/tls" ]; then echo "--cacert=$PKI/ca.crt --cert=$PKI/admin.crt --key=$PKI/admin.key"; fi
}

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
  if [ "${1:-}" = "--tls" ]; then
    [ -f "$PKI/ca.crt" ] || "$BIN" certs create --dir "$PKI" \
      --member m1=127.0.0.1,localhost --member m2=127.0.0.1,localhost --member m3=127.0.0.1,localhost --client admin
    touch "$DATA/tls"
  fi
  s="$(scheme)"
  CLUSTER="m1=$s://127.0.0.1:2380,m2=$s://127.0.0.1:22380,m3=$s://127.0.0.1:32380"
  for i in 0 1 2; do
    name="m$((i + 1))"
    if [ -f "$DATA/$name.pid" ] && kill -0 "$(cat "$DATA/$name.pid")" 2>/dev/null; then
      echo "$name already running"
      continue
    fi
    tls=()
    if [ "$s" = https ]; then
      tls=(--cert-file "$PKI/$name.crt" --key-file "$PKI/$name.key" --trusted-ca-file "$PKI/ca.crt" --client-cert-auth
        --peer-cert-file "$PKI/$name.crt" --peer-key-file "$PKI/$name.key" --peer-trusted-ca-file "$PKI/ca.crt"
        --peer-client-cert-auth)
    fi
    "$BIN" store --name "$name" --data-dir "$DATA/$name" \
      --listen-client-urls "$s://127.0.0.1:${CLIENT_PORTS[$i]}" \
      --listen-peer-urls "$s://127.0.0.1:${PEER_PORTS[$i]}" \
      --initial-cluster "$CLUSTER" --initial-cluster-token local-store "${tls[@]}" \
      >>"$DATA/$name.log" 2>&1 &
    echo $! >"$DATA/$name.pid"
  done
  for _ in $(seq 1 50); do
    # shellcheck disable=SC2046
    if ETCDCTL_API=3 etcdctl $(client_flags) --endpoints="$ENDPOINTS" endpoint health >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  echo
  f="$(client_flags)"
  echo "capstan store: three members on 127.0.0.1 ($s; data and logs in $DATA)"
  echo "  etcdctl ${f:+$f }--endpoints=$ENDPOINTS member list -w table"
  echo "  etcdctl ${f:+$f }--endpoints=$ENDPOINTS put greeting hello"
  echo "  $BIN ctl ${f:+$f }--endpoints=$ENDPOINTS endpoint status --cluster -w table"
  echo "  $BIN ctl ${f:+$f }--endpoints=127.0.0.1:2379 snapshot save backup.snap"
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
  # shellcheck disable=SC2046
  ETCDCTL_API=3 etcdctl $(client_flags) --endpoints="$ENDPOINTS" endpoint status -w table
}

case "${1:-}" in
  up) up "${2:-}" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up [--tls]|status|down" >&2; exit 2 ;;
esac
