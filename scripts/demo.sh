#!/usr/bin/env bash
# The main job: the lab, the daemon on its embedded defaults, and the story's ban
# (cable modem + set-top, threat_of_violence, footprint) filed by signed webhook and
# followed to "verified".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m lab.demo "$@"
