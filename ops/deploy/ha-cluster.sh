#!/usr/bin/env bash
# The HA control plane on this one machine: three `capstan server`s (each a
# store member, an apiserver, a controller-manager and a scheduler) on
# 127.0.0.21, .22 and .23 with the standard ports (2379, 2380 over mutual
# TLS, 6443), the second and third joining the first with its token, and two
# agents that join with the token and share the machine's containerd.
#   ha-cluster.sh up       build (release), start everything, run a sample Deployment
#   ha-cluster.sh status   store members, server readiness, nodes and pods
#   ha-cluster.sh down     stop everything (data stays in $DATA; pods are stopped)
set -euo pipefail
cd "$(dirname "$0")/../.."

export DATA="${DATA:-$PWD/capstan-ha}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/capstan}"
SERVERS=(127.0.0.21 127.0.0.22 127.0.0.23)
ROOT=""
[ "$(id -u)" -eq 0 ] || ROOT="sudo"
# shellcheck source=ops/deploy/processes.sh
. ops/deploy/processes.sh

up() {
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release -p capstan
  mkdir -p "$DATA"
  for i in 1 2 3; do
    local ip="${SERVERS[$((i - 1))]}"
    local how=(--cluster-init)
    if [ "$i" -gt 1 ]; then
      how=(--server "https://${SERVERS[0]}:6443" --token "$(cat "$DATA/s1/token")")
    fi
    # Once a server has joined, its data dir remembers the cluster.
    [ -d "$DATA/s$i/store/member" ] && how=()
    start "s$i" server --name "s$i" --data-dir "$DATA/s$i" --bind-address "$ip" \
      --listen-client-urls "http://$ip:2379" --listen-peer-urls "https://$ip:2380" "${how[@]}"
    wait_ready "s$i"
  done
  $ROOT ops/deploy/containerd-setup.sh
  for i in 1 2; do
    # Each agent joins through a different server; either keeps working
    # through the others when its own dies.
    ROOT_PREFIX="$ROOT" start "a$i" agent --server "https://${SERVERS[$i]}:6443" \
      --token "$(cat "$DATA/s1/token")" --node-name "worker-$i" --data-dir "$DATA/a$i" \
      --container-runtime-endpoint unix:///run/containerd/containerd.sock
  done
  export KUBECONFIG="$DATA/s1/admin.kubeconfig"
  for _ in $(seq 1 150); do
    [ "$(kubectl get nodes --no-headers 2>/dev/null | grep -c ' Ready ')" -eq 2 ] && break
    sleep 0.2
  done
  kubectl apply -f ops/deploy/sample-deployment.yaml
  kubectl rollout status deployment/hello --timeout=120s
  for i in 1 2 3; do
    echo "--- through s$i (https://${SERVERS[$((i - 1))]}:6443)"
    kubectl --kubeconfig "$DATA/s$i/admin.kubeconfig" get nodes,pods -o wide
  done
  echo
  echo "Three servers: https://127.0.0.21:6443, https://127.0.0.22:6443, https://127.0.0.23:6443 (logs in $DATA/*.log)"
  echo "  export KUBECONFIG=$DATA/s1/admin.kubeconfig    # s2/, s3/ for the others"
  echo "  kubectl get nodes,pods -o wide"
  echo "  kill -9 \$(cat $DATA/s1.pid)    # the others keep serving; start it again with: $0 up"
  echo "  etcdctl --endpoints=127.0.0.21:2379,127.0.0.22:2379,127.0.0.23:2379 endpoint status -w table"
  echo "  $0 down"
}

# wait_ready NAME: until the server answers /readyz (it writes its kubeconfig first).
wait_ready() {
  for _ in $(seq 1 300); do
    if kubectl --kubeconfig "$DATA/$1/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1; then return; fi
    sleep 0.2
  done
  echo "$1 did not become ready; see $DATA/$1.log" >&2
  exit 1
}

down() {
  # The sample pods go first, while the agents still run to stop them.
  kubectl --kubeconfig "$DATA/s1/admin.kubeconfig" delete deployment hello --ignore-not-found --wait=false \
    --request-timeout=10s 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -z "$(kubectl --kubeconfig "$DATA/s1/admin.kubeconfig" get pods -o name --request-timeout=5s 2>/dev/null)" ] && break
    sleep 0.2
  done
  stop a1 a2
  stop s3 s2 s1
}

status() {
  etcdctl --endpoints=127.0.0.21:2379,127.0.0.22:2379,127.0.0.23:2379 endpoint status -w table 2>&1 || true
  for i in 1 2 3; do
    printf 's%s readyz: ' "$i"
    kubectl --kubeconfig "$DATA/s$i/admin.kubeconfig" get --raw /readyz --request-timeout=5s 2>&1 || true
    echo
  done
  kubectl --kubeconfig "$DATA/s1/admin.kubeconfig" get nodes,pods -o wide 2>&1 || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
