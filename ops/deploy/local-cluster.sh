#!/usr/bin/env bash
# A local control plane on 127.0.0.1: the three-member store of
# local-store.sh, plus two apiserver replicas over it (6443 and 6444).
#   local-cluster.sh up       build (release), start the store and the apiservers
#   local-cluster.sh status   store endpoints and apiserver readiness
#   local-cluster.sh down     stop everything (data stays in $DATA)
set -euo pipefail
cd "$(dirname "$0")/../.."

export DATA="${DATA:-$PWD/capstan-data}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
BIN="$CARGO_TARGET_DIR/release/capstan"
ENDPOINTS="127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
API_PORTS=(6443 6444)

up() {
  ops/deploy/local-store.sh up
  for i in 0 1; do
    name="api$((i + 1))"
    if [ -f "$DATA/$name.pid" ] && kill -0 "$(cat "$DATA/$name.pid")" 2>/dev/null; then
      echo "$name already running"
      continue
    fi
    # Replicas share one CA and admin certificate (apiserver-pki).
    "$BIN" apiserver --store-endpoints "$ENDPOINTS" --data-dir "$DATA/$name" \
      --pki-dir "$DATA/apiserver-pki" --secure-port "${API_PORTS[$i]}" >>"$DATA/$name.log" 2>&1 &
    echo $! >"$DATA/$name.pid"
    # The first replica creates the certificates; the second reuses them.
    for _ in $(seq 1 100); do
      [ -f "$DATA/$name/admin.kubeconfig" ] && break
      sleep 0.1
    done
  done
  for _ in $(seq 1 100); do
    if kubectl --kubeconfig "$DATA/api1/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  echo
  echo "Kubernetes API: https://127.0.0.1:6443 and https://127.0.0.1:6444 (logs in $DATA/api1.log, api2.log)"
  echo "  export KUBECONFIG=$DATA/api1/admin.kubeconfig    # api2/admin.kubeconfig for the other replica"
  echo "  kubectl get ns"
  echo "  kubectl create deployment web --image=nginx --replicas=2"
  echo "  kubectl get deploy,rs,pods -o wide"
  echo "  $0 down"
}

down() {
  for name in api1 api2; do
    if [ -f "$DATA/$name.pid" ]; then
      kill "$(cat "$DATA/$name.pid")" 2>/dev/null || true
      rm -f "$DATA/$name.pid"
    fi
  done
  ops/deploy/local-store.sh down
}

status() {
  ops/deploy/local-store.sh status
  for name in api1 api2; do
    printf '%s readyz: ' "$name"
    kubectl --kubeconfig "$DATA/$name/admin.kubeconfig" get --raw /readyz 2>&1 || true
    echo
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
