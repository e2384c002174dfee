#!/usr/bin/env bash
# Ends the sandbox: SIGTERM to its tach processes, so that ingest drains and acknowledges its
# batch in flight and the pipeline worker finishes the stream it is running, then the screen
# session (SANDBOX_SESSION, default tach). The database and logs stay in sandbox/run/.
set -euo pipefail
session=${SANDBOX_SESSION:-tach}
wait_seconds=${STOP_WAIT:-30}

# The pid of the session's screen process (`screen -list` lines read "PID.NAME ...").
screen_pid=$( (screen -list || true) | awk -v s="$session" '{
  n = index($1, "."); if (n > 0 && substr($1, n + 1) == s) { print substr($1, 1, n - 1); exit } }' )
if [ -z "$screen_pid" ]; then
  echo "stop.sh: no sandbox is running in screen session $session" >&2
  exit 1
fi

descendants() {
  local child
  for child in $(pgrep -P "$1" || true); do
    echo "$child"
    descendants "$child"
  done
}
tach_pids=()
for pid in $(descendants "$screen_pid"); do
  [ "$(ps -o comm= -p "$pid" 2>/dev/null || true)" = tach ] && tach_pids+=("$pid")
done

if [ ${#tach_pids[@]} -gt 0 ]; then
  kill -TERM "${tach_pids[@]}" 2>/dev/null || true
  for _ in $(seq $((wait_seconds * 5))); do
    alive=0
    for pid in "${tach_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  [ $alive = 0 ] || echo "stop.sh: tach processes still running after ${wait_seconds} s; ending the session anyway" >&2
fi
screen -S "$session" -X quit
# The session ends asynchronously: wait until screen no longer lists it.
for _ in $(seq 50); do
  kill -0 "$screen_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$screen_pid" 2>/dev/null; then
  echo "stop.sh: screen session $session did not end" >&2
  exit 1
fi
echo "sandbox stopped (${#tach_pids[@]} tach processes ended)"
