#!/usr/bin/env bash
# The whole of tach on one machine, in a screen session named `tach` (StackTach's sandbox
# build.sh + screen): RabbitMQ in, ingest, pipeline worker, REST API, a notification
# generator publishing Nova traffic, and a shell with klug.
#
#   sandbox/start.sh            # build, migrate, start; `screen -r tach` to look
#   sandbox/stop.sh             # end it (the database stays in sandbox/run/)
#
# Environment: RATE (notifications/s published, default 50), RESET=1 starts from an empty
# database. For tests and side-by-side runs: SANDBOX_SESSION (screen session, default tach),
# SANDBOX_RUN (directory of the database and logs, default sandbox/run), SANDBOX_BIND (the
# API's address, default 127.0.0.1:8000), TACH_BIN_DIR (use the tach and klug there instead
# of building them). Needs RabbitMQ on 127.0.0.1:5672 (guest/guest) and screen.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
run=${SANDBOX_RUN:-$here/run}
rate=${RATE:-50}
session=${SANDBOX_SESSION:-tach}
bind=${SANDBOX_BIND:-127.0.0.1:8000}

command -v screen >/dev/null || { echo "start.sh: screen is not installed (apt-get install screen)" >&2; exit 1; }
if screen -list | grep -q "\.$session\b"; then
  echo "start.sh: a sandbox is already running in screen session $session (sandbox/stop.sh ends it)" >&2
  exit 1
fi
(exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || {
  echo "start.sh: RabbitMQ is not listening on 127.0.0.1:5672 (rabbitmq-server -detached)" >&2
  exit 1
}

if [ -n "${TACH_BIN_DIR:-}" ]; then
  bin=$(cd "$TACH_BIN_DIR" && pwd)
else
  cargo build --release --manifest-path "$root/Cargo.toml" -p tach -p klug
  bin=$root/target/release
fi
mkdir -p "$run"
cd "$run"
cp "$here/winchester.yaml" winchester.yaml
sed -i -e "s|^config_path: ../config|config_path: $root/config|" \
  -e "s|^  bind: 127.0.0.1:8000|  bind: $bind|" winchester.yaml
if [ "${RESET:-0}" = 1 ]; then rm -f tach.db tach.db-wal tach.db-shm; fi
"$bin/tach" db migrate --config winchester.yaml

export TACH_LOG=${TACH_LOG:-info}
screen -dmS "$session" -t ingest sh -c "'$bin/tach' ingest --config winchester.yaml 2>&1 | tee ingest.log; exec bash"
screen -S "$session" -X screen -t pipeline sh -c "'$bin/tach' pipeline --config winchester.yaml 2>&1 | tee pipeline.log; exec bash"
screen -S "$session" -X screen -t api sh -c "'$bin/tach' api --config winchester.yaml 2>&1 | tee api.log; exec bash"
# The generator starts once ingest has declared and bound monitor.info (else the first messages
# would have no queue to go to).
screen -S "$session" -X screen -t notigen bash -c "sleep 3; '$bin/tach' notigen --seed \$(date +%s) --duration 30d --start \"\$(date -u +%Y-%m-%dT%H:%M:%SZ)\" --publish amqp://guest:guest@127.0.0.1:5672/%2f --exchange monitor --routing-key monitor.info --rate $rate; exec bash"
screen -S "$session" -X screen -t klug bash -c "export PATH='$bin':\$PATH KLUG_URL=http://$bind; echo 'try: klug events --name \"compute.instance.*\" --limit 5'; exec bash"

echo "sandbox started: screen -r $session (windows: ingest, pipeline, api, notigen, klug)"
echo "API: http://$bind/v1/events   klug: $bin/klug events --name 'compute.instance.*'"
