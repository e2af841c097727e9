#!/usr/bin/env bash
# Mutation testing with mutmut 3: each module against the fast tests that exercise it
# (scripts/mutation.toml), niced and with one worker (this is a 2-core machine). Not run
# by CI. Results: bench/results/mutation/<module>.json and bench/results/mutation.md;
# surviving mutants are classified in bench/results/mutation-survivors.md.
#
#   scripts/mutation.sh                              # every module in scripts/mutation.toml
#   scripts/mutation.sh enforcer/api/signature.py    # one module
#   scripts/mutation.sh --list                       # the module -> tests map
#   scripts/mutation.sh --again MODULE               # re-run its survivors and unchecked
#   scripts/mutation.sh --collect MODULE             # record a stopped run as it stands
#   MUTATION_CHILDREN=2 scripts/mutation.sh ...      # two workers
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import mutmut" 2>/dev/null; then
  .venv/bin/pip install -q -e '.[dev,mutation]'
fi
exec nice -n "${MUTATION_NICE:-15}" .venv/bin/python scripts/mutation.py \
  --max-children "${MUTATION_CHILDREN:-1}" "$@"
