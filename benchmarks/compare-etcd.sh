#!/usr/bin/env bash
# Runs the same etcd-bench workloads against etcd and against capstan's store,
# each on a fresh three-member cluster on 127.0.0.1 (fsync on, the defaults of
# both), then compares them and runs `etcdctl check perf` against capstan.
#
#   DURATION=10                  seconds measured per workload
#   WORKLOADS="put:1000 k8s-mix" a subset: name:clients, or a name for all of its client counts
#   SYSTEMS="etcd capstan"       which systems to run
#   RESULTS=benchmarks/results/<date>   where the JSON lines, logs and check perf output go
#   CLIENT_PORTS="2379 22379 32379" PEER_PORTS="2380 22380 32380"
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
export ETCDCTL_API=3
DURATION="${DURATION:-10}"
SYSTEMS="${SYSTEMS:-etcd capstan}"
RESULTS="${RESULTS:-benchmarks/results/$(date +%Y-%m-%d)}"
read -r -a CLIENT_PORTS <<<"${CLIENT_PORTS:-2379 22379 32379}"
read -r -a PEER_PORTS <<<"${PEER_PORTS:-2380 22380 32380}"
ENDPOINTS="127.0.0.1:${CLIENT_PORTS[0]},127.0.0.1:${CLIENT_PORTS[1]},127.0.0.1:${CLIENT_PORTS[2]}"
INITIAL_CLUSTER="m1=http://127.0.0.1:${PEER_PORTS[0]},m2=http://127.0.0.1:${PEER_PORTS[1]},m3=http://127.0.0.1:${PEER_PORTS[2]}"
CAPSTAN="$CARGO_TARGET_DIR/release/capstan"
BENCH="$CARGO_TARGET_DIR/release/etcd-bench"
DEFAULT_WORKLOADS=(put:1 put:64 put:1000 range-linearizable:1 range-linearizable:1000 range-serializable:1
  range-serializable:1000 txn-cas:64 watch-fanout:1000 k8s-mix:64)

SERVER_PIDS=()
DATA_ROOT="$(mktemp -d -t capstan-bench.XXXXXX)"

stop_servers() {
  local pid deadline=$((SECONDS + 20))
  for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do
    # bash reaps its exited children, so kill -0 fails once a member is gone.
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
      sleep 0.1
    done
  done
  SERVER_PIDS=()
}
cleanup() {
  stop_servers
  rm -rf "$DATA_ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The workload list, with bare names in $WORKLOADS expanded to their default client counts.
selected_workloads() {
  local want entry
  if [ -z "${WORKLOADS:-}" ]; then
    printf '%s\n' "${DEFAULT_WORKLOADS[@]}"
    return
  fi
  for want in $WORKLOADS; do
    if [[ "$want" == *:* ]]; then
      echo "$want"
      continue
    fi
    for entry in "${DEFAULT_WORKLOADS[@]}"; do
      if [ "${entry%%:*}" = "$want" ]; then echo "$entry"; fi
    done
  done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A stopped server may hold its ports for a moment after it exits.
wait_ports_free() {
  local port
  for port in "${CLIENT_PORTS[@]}" "${PEER_PORTS[@]}"; do
    for _ in $(seq 1 100); do
      port_in_use "$port" || continue 2
      sleep 0.1
    done
    echo "port $port is still in use" >&2
    exit 1
  done
}

# start_cluster SYSTEM LOGDIR: three fresh members, healthy when it returns.
start_cluster() {
  local system="$1" logs="$2" i name client peer
  local -a server
  wait_ports_free
  mkdir -p "$logs"
  for i in 0 1 2; do
    name="m$((i + 1))"
    client="http://127.0.0.1:${CLIENT_PORTS[$i]}"
    peer="http://127.0.0.1:${PEER_PORTS[$i]}"
    case "$system" in
      etcd) server=(etcd) ;;
      capstan) server=("$CAPSTAN" store) ;;
    esac
    "${server[@]}" --name "$name" --data-dir "$DATA_ROOT/$system/$name" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-token bench \
      >"$logs/$name.log" 2>&1 &
    SERVER_PIDS+=("$!")
  done
  local deadline=$((SECONDS + 60)) pid
  until etcdctl --endpoints="$ENDPOINTS" --dial-timeout=1s endpoint health >/dev/null 2>&1; do
    for pid in "${SERVER_PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "a $system member exited at start-up; logs in $logs" >&2
        exit 1
      fi
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$system cluster not healthy within 60 s; logs in $logs" >&2
      exit 1
    fi
    sleep 0.2
  done
}

stop_cluster() {
  stop_servers
  rm -rf "${DATA_ROOT:?}/$1"
}

join_by_comma() {
  local IFS=,
  echo "$*"
}

packages=(-p capstan-benchmarks)
if [[ " $SYSTEMS " == *" capstan "* ]]; then packages+=(-p capstan); fi
cargo build --release "${packages[@]}"
mkdir -p "$RESULTS"
mapfile -t workloads < <(selected_workloads)

for system in $SYSTEMS; do
  for entry in "${workloads[@]}"; do
    workload="${entry%%:*}"
    clients="${entry##*:}"
    echo "== $system $workload $clients clients"
    start_cluster "$system" "$RESULTS/logs/$system-$workload-$clients"
    # One failed run leaves its pair out of the comparison; the others still run.
    "$BENCH" run --endpoints "$ENDPOINTS" --workload "$workload" --clients "$clients" \
      --duration-secs "$DURATION" --pids "$(join_by_comma "${SERVER_PIDS[@]}")" \
      --label "$system" --json-out "$RESULTS/$system.jsonl" ||
      echo "etcd-bench failed: $system $workload $clients clients" >&2
    stop_cluster "$system"
  done
done

if [ -f "$RESULTS/capstan.jsonl" ] && [ -f "$RESULTS/etcd.jsonl" ]; then
  echo "== capstan against etcd"
  "$BENCH" compare --capstan "$RESULTS/capstan.jsonl" --etcd "$RESULTS/etcd.jsonl" | tee "$RESULTS/compare.txt"
fi

if [[ " $SYSTEMS " == *" capstan "* ]]; then
  echo "== etcdctl check perf --load=l against capstan"
  start_cluster capstan "$RESULTS/logs/capstan-check-perf"
  # check perf exits non-zero when it fails a check; its lines say which.
  { etcdctl --endpoints="$ENDPOINTS" check perf --load=l 2>&1 || true; } |
    tr '\r' '\n' | { grep -v ' / 60' || true; } | tee "$RESULTS/check-perf.txt"
  stop_cluster capstan
fi
echo "results in $RESULTS"
