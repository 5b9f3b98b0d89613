#!/usr/bin/env bash
# The test command (README): installs what the tests need on Debian, builds,
# and runs every test. Safe to run again; installs are skipped when present.
set -euo pipefail
cd "$(dirname "$0")"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
export CARGO_TERM_COLOR=never

need=()
command -v clang >/dev/null || need+=(clang libclang-dev)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v etcd >/dev/null || need+=(etcd-server)
command -v ip >/dev/null || need+=(iproute2)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian etcd-server package starts a system etcd on 2379/2380; the tests
# pick their own ports, but a stray service would only waste memory.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi

# containerd with a local pause image and busybox images, for the node agent's
# tests (no registry is reachable). It needs root, like containerd itself.
ROOT=""
[ "$(id -u)" -eq 0 ] || ROOT="sudo -E"
$ROOT ops/deploy/containerd-setup.sh

# Build and test the same package set: a different feature set rebuilds RocksDB.
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
# The chaos harness's short profile: kills, pauses, partitions and snapshot
# installs under load; it prints its summary last and fails on any violation.
# Its network namespaces need root.
$ROOT "$CARGO_TARGET_DIR/debug/chaos" --duration 60 --history-dir "$CARGO_TARGET_DIR/chaos-histories"
# The control plane's chaos run, short profile: three servers and two agents
# on containerd; the store, controller-manager and scheduler leaders and a
# random server killed, a server paused; Deployments must converge each time.
$ROOT "$CARGO_TARGET_DIR/debug/cp_chaos" --duration 60
# The README's HA bring-up as a new user runs it (the debug binary, a data
# dir of its own): three servers joining with the token, two agents, the
# sample Deployment rolled out and listed through every server; then down.
if command -v kubectl >/dev/null; then
  ha_data="$(mktemp -d)"
  ha() { DATA="$ha_data" BIN="$CARGO_TARGET_DIR/debug/capstan" SKIP_BUILD=1 ops/deploy/ha-cluster.sh "$@"; }
  trap 'ha down >/dev/null 2>&1 || true' EXIT
  ha up
  ha down
  trap - EXIT
  $ROOT rm -rf "$ha_data"
else
  echo "ha-cluster.sh skipped: no kubectl"
fi
