#!/usr/bin/env bash
# Ends the sandbox's screen session; the database and logs stay in sandbox/run/.
set -euo pipefail
if screen -list | grep -q '\.tach\b'; then
  screen -S tach -X quit
  echo "sandbox stopped"
else
  echo "stop.sh: no sandbox is running" >&2
fi
