# Sourced by the bring-up scripts: background `capstan` processes with pid
# files and logs in $DATA. Needs DATA, BIN and ROOT (sudo or empty) set.

# start NAME ARGS...: runs `capstan ARGS...` in the background unless running
# (ROOT_PREFIX=sudo runs it as root).
start() {
  local name="$1"
  shift
  if [ -f "$DATA/$name.pid" ] && kill -0 "$(cat "$DATA/$name.pid")" 2>/dev/null; then
    echo "$name already running"
    return
  fi
  ${ROOT_PREFIX:-} "$BIN" "$@" >>"$DATA/$name.log" 2>&1 &
  echo $! >"$DATA/$name.pid"
}

# stop NAME...: SIGTERM to each, then wait (up to 20 s) until they are gone.
stop() {
  local pids=()
  for name in "$@"; do
    if [ -f "$DATA/$name.pid" ]; then
      pid="$(cat "$DATA/$name.pid")"
      kill "$pid" 2>/dev/null || $ROOT kill "$pid" 2>/dev/null || true
      pids+=("$pid")
      rm -f "$DATA/$name.pid"
    fi
  done
  for _ in $(seq 1 200); do
    local alive=0
    for pid in "${pids[@]}"; do
      if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" -eq 0 ] && return
    sleep 0.1
  done
}
