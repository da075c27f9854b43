#!/usr/bin/env bash
# Known vulnerabilities in the locked dependencies (pip-audit, PyPI's advisory data), run by
# `make test` and `make audit`. pip-audit lives in its own venv (.venv-audit) so it never changes
# the product's packages.
#
# - requirements/product.lock: a package with a known vulnerability fails the run.
# - requirements/rasa.lock: reported, never fails (Rasa 3.6 pins old releases we cannot move;
#   that server only listens on loopback and parses text).
# - No advisory data reachable (an offline machine, a PyPI mirror without the JSON API): every
#   package comes back "not audited"; that is printed as a warning and does not fail the run,
#   because no result is not a finding. `AUDIT_STRICT=1` turns it into a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-audit
if [ ! -x "$VENV/bin/pip-audit" ]; then
  { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check "pip-audit==2.10.1"; } \
    2> >(grep -v "^WARNING: Location" >&2) || { echo "audit: could not install pip-audit" >&2; exit 1; }
fi

audit() {  # lock file, gate (1 = failures count)
  local lock=$1 gate=$2 out
  out=$(mktemp)
  grep -v '^#' "$lock" > "$out.txt"
  "$VENV/bin/pip-audit" --no-deps --disable-pip --progress-spinner off -f json -o "$out" -r "$out.txt" \
    >/dev/null 2>"$out.err"
  python3 - "$lock" "$gate" "$out" <<'EOF'
import json, os, sys
lock, gate, path = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
try:
    deps = json.load(open(path)).get("dependencies", [])
except (OSError, ValueError):
    print(f"audit: {lock}: pip-audit produced no report: " + open(path + ".err").read()[-500:], file=sys.stderr)
    sys.exit(1 if gate else 0)
vulns = [(d["name"], d["version"], v) for d in deps for v in d.get("vulns", [])]
skipped = [d for d in deps if d.get("skip_reason")]
for name, ver, v in vulns:
    fix = ", ".join(v.get("fix_versions") or []) or "no fix yet"
    print(f"audit: {lock}: {name} {ver}: {v.get('id')} (fixed in: {fix})")
audited = len(deps) - len(skipped)
print(f"audit: {lock}: {audited} of {len(deps)} packages audited, {len(vulns)} known vulnerabilities")
if deps and not audited:
    print(f"audit: WARNING: no advisory data reachable for {lock} (is pypi.org's JSON API reachable?);"
          " nothing was checked", file=sys.stderr)
    sys.exit(1 if gate and os.environ.get("AUDIT_STRICT") == "1" else 0)
sys.exit(1 if gate and vulns else 0)
EOF
  local rc=$?
  rm -f "$out" "$out.txt" "$out.err"
  return $rc
}

audit requirements/product.lock 1 || exit 1
audit requirements/rasa.lock 0
exit 0
