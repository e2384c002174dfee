#!/usr/bin/env bash
# Ends the sandbox's screen session (SANDBOX_SESSION, default tach); the database and logs
# stay in sandbox/run/.
set -euo pipefail
session=${SANDBOX_SESSION:-tach}
if screen -list | grep -q "\.$session\b"; then
  screen -S "$session" -X quit
  echo "sandbox stopped"
else
  echo "stop.sh: no sandbox is running in screen session $session" >&2
  exit 1
fi
