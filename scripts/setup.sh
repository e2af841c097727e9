#!/usr/bin/env bash
# Set up a fresh machine: system tools the lab and tests use, and the Python venv.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v snmpget >/dev/null || need+=(snmp)
command -v ssh >/dev/null || need+=(openssh-client)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q -U pip >/dev/null
.venv/bin/pip install -q -e '.[dev]'
