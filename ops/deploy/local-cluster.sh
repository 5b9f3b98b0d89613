#!/usr/bin/env bash
# A local cluster on 127.0.0.1: the three-member store of local-store.sh,
# two apiserver replicas over it (6443 and 6444), two controller-managers and
# two schedulers (leader-elected: one of each acts), and a node agent running
# pods on containerd (prepared by containerd-setup.sh, which needs root).
#   local-cluster.sh up       build (release), start everything, run a sample Deployment
#   local-cluster.sh status   store endpoints, apiserver readiness, nodes and pods
#   local-cluster.sh down     stop everything (data stays in $DATA; pods are stopped)
set -euo pipefail
cd "$(dirname "$0")/../.."

export DATA="${DATA:-$PWD/capstan-data}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
BIN="$CARGO_TARGET_DIR/release/capstan"
ENDPOINTS="127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
API_PORTS=(6443 6444)
ROOT=""
[ "$(id -u)" -eq 0 ] || ROOT="sudo"
# shellcheck source=ops/deploy/processes.sh
. ops/deploy/processes.sh

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
  # One controller-manager and one scheduler per apiserver replica.
  for i in 1 2; do
    start "cm$i" controller-manager --kubeconfig "$DATA/api$i/controller-manager.kubeconfig"
    start "sched$i" scheduler --kubeconfig "$DATA/api$i/scheduler.kubeconfig"
  done
  # containerd and the agent that drives it run as root.
  $ROOT ops/deploy/containerd-setup.sh
  ROOT_PREFIX="$ROOT" start agent agent --kubeconfig "$DATA/api1/kubelet.kubeconfig" \
    --container-runtime-endpoint unix:///run/containerd/containerd.sock
  export KUBECONFIG="$DATA/api1/admin.kubeconfig"
  for _ in $(seq 1 150); do
    kubectl get nodes 2>/dev/null | grep -q ' Ready ' && break
    sleep 0.2
  done
  kubectl apply -f ops/deploy/sample-deployment.yaml
  kubectl rollout status deployment/hello --timeout=120s
  kubectl get nodes -o wide
  kubectl get pods -o wide
  echo
  echo "Kubernetes API: https://127.0.0.1:6443 and https://127.0.0.1:6444 (logs in $DATA/*.log)"
  echo "  export KUBECONFIG=$DATA/api1/admin.kubeconfig    # api2/admin.kubeconfig for the other replica"
  echo "  kubectl get deploy,rs,pods -o wide"
  echo "  kubectl scale deployment hello --replicas=5"
  echo "  kubectl describe pod -l app=hello"
  echo "  ctr -n k8s.io containers ls"
  echo "  $0 down"
}

down() {
  # The sample pods go first, while the agent still runs to stop them.
  if [ -f "$DATA/agent.pid" ] && kill -0 "$(cat "$DATA/agent.pid")" 2>/dev/null; then
    kubectl --kubeconfig "$DATA/api1/admin.kubeconfig" delete deployment hello --ignore-not-found --wait=false || true
    for _ in $(seq 1 100); do
      [ -z "$(kubectl --kubeconfig "$DATA/api1/admin.kubeconfig" get pods -o name 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  # Components first, while the apiservers are there for them to release
  # their leases; then the apiservers.
  stop agent sched1 sched2 cm1 cm2
  stop api1 api2
  ops/deploy/local-store.sh down
}

status() {
  ops/deploy/local-store.sh status
  for name in api1 api2; do
    printf '%s readyz: ' "$name"
    kubectl --kubeconfig "$DATA/$name/admin.kubeconfig" get --raw /readyz 2>&1 || true
    echo
  done
  kubectl --kubeconfig "$DATA/api1/admin.kubeconfig" get nodes,pods -o wide 2>&1 || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
