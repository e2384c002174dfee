#!/usr/bin/env bash
# REST API benchmark (issue 5): a database of about 1,000,000 events, then
# GET /v1/events?traits=instance_id:X and GET /v1/streams?distinguishing_traits=instance_id:X
# with 16 concurrent connections (wrk), X drawn at random from the instances in the data.
#
#   crates/tach-api/benches/api.sh [sqlite|postgres|mysql]
#
# Environment: COUNT (notifications, default 1000000), DURATION (per wrk run, default 30s),
# WORK (working directory, default /tmp/tach-api-bench-<backend>), REUSE=1 keeps an existing
# database of an earlier run, TACH (a tach binary to run instead of building this checkout's,
# to compare builds), LOOKUPS (events, streams or both, the default). Prints each run's CPU
# time per request of tach api and of the database server. Needs wrk (apt-get install wrk).
set -euo pipefail

backend=${1:-sqlite}
count=${COUNT:-1000000}
duration=${DURATION:-30s}
root=$(cd "$(dirname "$0")/../../.." && pwd)
work=${WORK:-/tmp/tach-api-bench-$backend}
tach=${TACH:-$root/target/release/tach}
port=${PORT:-8911}

command -v wrk >/dev/null || { echo "api.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -n "${TACH:-}" ] || cargo build --release -p tach --manifest-path "$root/Cargo.toml"
mkdir -p "$work"
cd "$work"

case $backend in
  sqlite) url=sqlite://tach.db ;;
  postgres) url=postgres://postgres@127.0.0.1:5432/tach_api_bench ;;
  mysql) url=mysql://root@127.0.0.1:3306/tach_api_bench ;;
  *) echo "api.sh: unknown backend $backend (sqlite, postgres, mysql)" >&2; exit 2 ;;
esac

cat > winchester.yaml <<YAML
config_path: ["$root/config"]
database:
  url: $url
distiller_config: event_definitions.yaml
trigger_definitions: triggers.yaml
pipeline_config: pipelines.yaml
pipeline_handlers: {logger: logger, usage: usage}
purge_completed_streams: false
api:
  bind: 127.0.0.1:$port
YAML

if [ "${REUSE:-0}" != 1 ] || [ ! -f ids.txt ]; then
  case $backend in
    sqlite) rm -f tach.db tach.db-wal tach.db-shm ;;
    postgres) psql -q -h 127.0.0.1 -U postgres -d postgres \
        -c 'DROP DATABASE IF EXISTS tach_api_bench WITH (FORCE)' -c 'CREATE DATABASE tach_api_bench' ;;
    mysql) mariadb -h 127.0.0.1 -u root \
        -e 'DROP DATABASE IF EXISTS tach_api_bench; CREATE DATABASE tach_api_bench' ;;
  esac
  "$tach" notigen --seed 1 --count "$count" --output notifications.jsonl
  "$tach" db migrate --config winchester.yaml
  TACH_LOG=error "$tach" replay --config winchester.yaml --drain notifications.jsonl
  grep -o '"instance_id":"[^"]*"' notifications.jsonl | cut -d'"' -f4 | sort -u > ids.txt
fi
echo "instances: $(wc -l < ids.txt)"

TACH_LOG=error "$tach" api --config winchester.yaml &
api=$!
trap 'kill $api 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.2
done

# CPU time (clock ticks) used so far by the processes named $1 (all of them), or by pid $2.
ticks() {
  local pids=${2:-$(pgrep -x "$1" || true)} sum=0 p
  for p in $pids; do
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
case $backend in
  postgres) server=postgres ;;
  mysql) server=mariadbd ;;
  *) server= ;;
esac

case ${LOOKUPS:-both} in
  events) paths=("/v1/events?traits=instance_id:") ;;
  streams) paths=("/v1/streams?distinguishing_traits=instance_id:") ;;
  both) paths=("/v1/events?traits=instance_id:" "/v1/streams?distinguishing_traits=instance_id:") ;;
  *) echo "api.sh: LOOKUPS is events, streams or both" >&2; exit 2 ;;
esac
for path in "${paths[@]}"; do
  echo "== GET ${path}X, 16 connections, $duration"
  api0=$(ticks "" $api) server0=$(ticks "${server:-none}")
  out=$(IDS_FILE=$work/ids.txt API_PATH=$path \
    wrk -t2 -c16 -d"$duration" --latency -s "$root/crates/tach-api/benches/lookup.lua" \
    "http://127.0.0.1:$port")
  api1=$(ticks "" $api) server1=$(ticks "${server:-none}")
  echo "$out"
  # Where the two cores go: CPU per request of the API process and of the database server.
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  awk -v n="$requests" -v hz="$(getconf CLK_TCK)" -v a=$((api1 - api0)) \
      -v s=$((server1 - server0)) -v name="${server:-}" 'BEGIN {
    printf "CPU per request: tach api %.3f ms", a / hz * 1000 / n
    if (name != "") printf ", %s %.3f ms", name, s / hz * 1000 / n
    printf "\n" }'
done
