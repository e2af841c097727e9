#!/usr/bin/env bash
# Every check: tests, ruff, mypy. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
