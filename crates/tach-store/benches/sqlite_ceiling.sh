#!/usr/bin/env bash
# What SQLite itself can do with tach's event writes on this machine, without tach: BATCHES
# transactions of 1,000 events (random 32-hex message ids, 1 KB trait documents) and 5
# trait-index rows per event, with tach's schema and PRAGMAs, generated and run inside the
# sqlite3 CLI (no driver, no per-row overhead, no streams). The trait-index keys follow the
# notigen data: instance_id one of 15,000, request_id shared by 4 events in a row, tenant_id
# and user_id one of 100, host one of 50. With LINKS=1 each event also gets the two stream
# links the config/ triggers give it (stream_events: its instance's day stream, one of 15,000,
# and its request's stream, shared by 4 events in a row) - still no stream rows, updates or
# reads.
#
#   crates/tach-store/benches/sqlite_ceiling.sh [BATCHES]     (default 200: 200,000 events)
#
# Needs the sqlite3 CLI (apt-get install sqlite3). Prints the elapsed time and events/s.
set -euo pipefail
batches=${1:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  cat <<'SQL'
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -16384;
PRAGMA wal_autocheckpoint = 16384;
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id VARCHAR(255) NOT NULL UNIQUE,
  event_type VARCHAR(255) NOT NULL, generated BIGINT NOT NULL, traits TEXT NULL);
CREATE INDEX ix_events_generated_id ON events (generated, id);
CREATE INDEX ix_events_type_generated ON events (event_type, generated);
CREATE TABLE trait_index (k BIGINT NOT NULL, event_id BIGINT NOT NULL,
  PRIMARY KEY (k, event_id)) WITHOUT ROWID;
CREATE TABLE stream_events (stream_id BIGINT NOT NULL, event_id BIGINT NOT NULL,
  PRIMARY KEY (stream_id, event_id)) WITHOUT ROWID;
CREATE INDEX ix_stream_events_event ON stream_events (event_id);
SQL
  for i in $(seq 1 "$batches"); do
    echo "BEGIN IMMEDIATE;"
    echo "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 1000)"
    echo "INSERT INTO events (message_id, event_type, generated, traits)"
    echo "  SELECT lower(hex(randomblob(16))), 'compute.instance.exists',"
    echo "    1700000000000000 + ($i * 1000 + n) * 1000, printf('%.1000c', 'x') FROM s;"
    for key in "1000000000 + abs(random()) % 15000" "2000000000 + id / 4" \
        "3000000000 + abs(random()) % 100" "4000000000 + abs(random()) % 100" \
        "5000000000 + abs(random()) % 50"; do
      echo "INSERT INTO trait_index (k, event_id) SELECT ($key) * 1000003, id FROM events"
      echo "  WHERE id > (SELECT max(id) FROM events) - 1000;"
    done
    if [ "${LINKS:-0}" = 1 ]; then
      for stream in "abs(random()) % 15000" "100000 + id / 4"; do
        echo "INSERT INTO stream_events (stream_id, event_id) SELECT $stream, id FROM events"
        echo "  WHERE id > (SELECT max(id) FROM events) - 1000;"
      done
    fi
    echo "COMMIT;"
  done
} > "$work/load.sql"
start=$(date +%s.%N)
sqlite3 "$work/ceiling.db" < "$work/load.sql" > /dev/null
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$((batches * 1000))" \
  'BEGIN { printf "%d events in %.2f s: %.0f events/s\n", n, e - s, n / (e - s) }'
