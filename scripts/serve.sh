#!/usr/bin/env bash
# Install calltracking into .venv and run it on the embedded SQLite database in the data directory
# (`data_dir`, CALLTRACKING_DATA_DIR; default ~/.local/state/calltracking, printed at the start).
# It starts without a PBX and keeps trying to reach Asterisk at the configured address (default
# 127.0.0.1:5038). Settings: a TOML file named by CALLTRACKING_CONFIG, or CALLTRACKING_* variables.
set -euo pipefail
cd "$(dirname "$0")/.."
# Recordings are converted with ffmpeg; without it calls are still logged and recordings wait for it.
if ! command -v ffmpeg >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq ffmpeg
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/calltracking serve "$@"
