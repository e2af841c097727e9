#!/usr/bin/env bash
# Hand mutations mutmut cannot make (pydantic Field limits and decorated validators in
# enforcer/policy/model.py) and the issue's named cases (#23): each line mutates one spot
# in a scratch copy of the work tree (.mutation/by-hand, git-ignored), runs the test that
# must catch it, and prints a markdown row. Every row must say "killed".
#   scripts/mutation-by-hand.sh > /tmp/by-hand.md
#   scripts/mutation-by-hand.sh 'coverage|amend' > /tmp/by-hand.md  # rows of files matching
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ONLY=${1-}
WORK=$ROOT/.mutation/by-hand
rm -rf "$WORK" && mkdir -p "$WORK"
git ls-files -co --exclude-standard -z | grep -zv '^\.mutation/' | xargs -0 cp --parents -t "$WORK"
cd "$WORK"
echo "| mutation | file | result |"
echo "| --- | --- | --- |"
mut() {  # name, file, old, new, pytest args...
  local name=$1 file=$2 old=$3 new=$4; shift 4
  if [[ -n $ONLY && ! $file =~ $ONLY ]]; then return; fi
  cp "$file" "$file.orig"
  python3 - "$file" "$old" "$new" <<'PY'
import sys
p, old, new = sys.argv[1:4]
s = open(p).read()
assert s.count(old) == 1, f"{p}: {old!r} is not there exactly once"
open(p, "w").write(s.replace(old, new))
PY
  local r
  if nice -n 15 "$ROOT/.venv/bin/pytest" -q -x -p no:cacheprovider "$@" >"$WORK/last.log" 2>&1; then
    r="SURVIVED"
  else
    r="killed by $(grep -m1 -o 'FAILED [^ ]*' "$WORK/last.log" | sed 's/FAILED //')"
  fi
  echo "| $name | \`$file\` | $r |"
  mv "$file.orig" "$file"
}
M=enforcer/policy/model.py
B=tests/policy/test_policy_bounds.py
mut "n ge=1 -> ge=0" $M 'Field(ge=1, le=1000)] | None' 'Field(ge=0, le=1000)] | None' $B
mut "n le=1000 -> le=1001" $M 'Field(ge=1, le=1000)] | None' 'Field(ge=1, le=1001)] | None' $B
mut "time_limit_hours gt=0 -> ge=0" $M 'Field(gt=0, le=24 * 90)]' 'Field(ge=0, le=24 * 90)]' $B
mut "time_limit_hours le=2160 -> le=2161" $M 'Field(gt=0, le=24 * 90)]' 'Field(gt=0, le=24 * 90 + 1)]' $B
mut "requester_may_approve default False -> True" $M 'requester_may_approve: bool = False' 'requester_may_approve: bool = True' $B
mut "layers min_length=1 -> 0" $M 'list[Layer], Field(min_length=1)]' 'list[Layer], Field(min_length=0)]' $B
mut "duplicate layers check removed" $M 'if len(set(self.layers)) != len(self.layers):' 'if False:' $B
mut "Name pattern loses ^" $M 'pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"' 'pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"' $B
mut "Name pattern loses \$" $M 'pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"' 'pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}"' $B
mut "URL pattern loses ^" $M 'pattern=r"^https?://[^\s/]+(/\S*)?$"' 'pattern=r"https?://[^\s/]+(/\S*)?$"' $B
mut "URL pattern loses \$" $M 'pattern=r"^https?://[^\s/]+(/\S*)?$"' 'pattern=r"^https?://[^\s/]+(/\S*)?"' $B
mut "URL max_length 2000 -> 2001" $M 'max_length=2000' 'max_length=2001' $B
mut "timeout_s gt=0 -> ge=0" $M 'Field(gt=0, le=60)] = 5.0' 'Field(ge=0, le=60)] = 5.0' $B
mut "timeout_s le=60 -> le=61" $M 'Field(gt=0, le=60)] = 5.0' 'Field(gt=0, le=61)] = 5.0' $B
mut "max_attempts ge=1 -> ge=0" $M 'Field(ge=1, le=100)] = 8' 'Field(ge=0, le=100)] = 8' $B
mut "max_attempts le=100 -> le=101" $M 'Field(ge=1, le=100)] = 8' 'Field(ge=1, le=101)] = 8' $B
mut "queue_size ge=1 -> ge=0" $M 'Field(ge=1, le=1_000_000)]' 'Field(ge=0, le=1_000_000)]' $B
mut "n_of_m without n accepted" $M 'if self.rule is Rule.N_OF_M and self.n is None:' 'if False:' $B
mut "n with another rule accepted" $M 'if self.rule is not Rule.N_OF_M and self.n is not None:' 'if False:' $B
mut "exactly-one-secret check: == -> !=" $M 'if (self.secret is None) == (self.secret_env is None):' 'if (self.secret is None) != (self.secret_env is None):' $B
mut "secret_env pattern loses ^" $M 'pattern=r"^[A-Z_][A-Z0-9_]*$"' 'pattern=r"[A-Z_][A-Z0-9_]*$"' $B
mut "every-reason check removed" $M 'if missing:' 'if False:' $B
mut "unknown notify target accepted" $M 'if name not in self.webhooks:' 'if False:' $B
mut "extra=forbid -> ignore" $M 'ConfigDict(extra="forbid")' 'ConfigDict(extra="ignore")' $B
mut "poll_s le=60 -> le=61" $M 'poll_s: Annotated[float, Field(gt=0, le=60)]' 'poll_s: Annotated[float, Field(gt=0, le=61)]' $B
mut "keep_days le=3650 -> 3651" $M 'Field(gt=0, le=3650)]' 'Field(gt=0, le=3651)]' $B
mut "lift_request_id of another order accepted" enforcer/lifts.py 'if lift.order_id != order_id:' 'if False:' tests/lifts/test_lift_workflow.py -k another_order
mut "non-JSON payload reported intact" enforcer/store/audit.py '        return "payload is not valid JSON"' '        return None' tests/store/test_audit_gaps.py -k non_json
mut "lift notices routed by every reason" enforcer/policy/model.py 'reasons = [Reason(reason)] if reason is not None else list(self.reasons)' 'reasons = list(self.reasons)' tests/notify/test_routing.py -k routed_by_the_orders_reason
mut "lift notice payload without the reason" enforcer/lifts.py 'return {"order_id": lift.order_id, "reason": reason,' 'return {"order_id": lift.order_id,' tests/lifts/test_lift_workflow.py -k payload
# Module constants and dataclass defaults of the coverage and amendment code (mutmut
# mutates function bodies only).
C=enforcer/domain/coverage.py
mut "LAYERS: cmts applied before dhcp" $C 'LAYERS: tuple[str, ...] = ("dhcp", "cmts", "headend")' 'LAYERS: tuple[str, ...] = ("cmts", "dhcp", "headend")' tests/unit/test_amend.py tests/unit/test_coverage.py
mut "SCOPE_RANK: cmts no wider than node" $C 'Scope.CMTS: 1,' 'Scope.CMTS: 0,' tests/unit/test_coverage.py
mut "SCOPE_RANK: footprint no wider than cmts" $C 'Scope.FOOTPRINT: 2}' 'Scope.FOOTPRINT: 1}' tests/unit/test_coverage.py
mut "REASON_RANK: harassment over threat of violence" $C 'Reason.HARASSMENT: 4, Reason.THREAT_OF_VIOLENCE: 5}' 'Reason.HARASSMENT: 5, Reason.THREAT_OF_VIOLENCE: 4}' tests/unit/test_coverage.py
mut "RULE_RANK: n_of_m over unanimous" $C '"n_of_m": 1, "unanimous": 2}' '"n_of_m": 3, "unanimous": 2}' tests/unit/test_coverage.py
mut "RULE_RANK: any as strict as n_of_m" $C 'RULE_RANK = {"any": 0,' 'RULE_RANK = {"any": 1,' tests/unit/test_coverage.py
mut "DefinedOrder (an amendment's side) not active" $C 'state: OrderState = OrderState.VERIFIED' 'state: OrderState = OrderState.LIFTED' tests/unit/test_coverage.py
mut "Changes.node default: no node" enforcer/amend.py 'node: str | None = _UNSET  #' 'node: str | None = None  #' tests/unit/test_amend.py
mut "lifting orders may be amended" enforcer/store/amendments.py '_AMENDABLE = {OrderState.ACCEPTED.value,' '_AMENDABLE = {OrderState.LIFTING.value, OrderState.ACCEPTED.value,' tests/store/test_store_coverage.py -k "not_held and sqlite"
mut "lift_pending orders may not be amended" enforcer/store/amendments.py 'OrderState.LIFT_PENDING.value}' 'OrderState.VERIFIED.value}' tests/store/test_store_coverage.py -k "amend and sqlite"
mut "lifted orders count as holding a block" enforcer/store/coverage.py '_ACTIVE = [st.value for st in ACTIVE_ORDER_STATES]' '_ACTIVE = [*(st.value for st in ACTIVE_ORDER_STATES), "lifting", "lifted"]' tests/store/test_store_coverage.py -k sqlite
mut "removed targets count as live" enforcer/store/coverage.py '_LIVE = TargetState.REMOVED.value' '_LIVE = TargetState.PENDING.value' tests/store/test_store_coverage.py -k sqlite
