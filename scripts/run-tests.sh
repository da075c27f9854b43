#!/usr/bin/env bash
# Runs the whole suite: unit tests, then integration tests against real Redis, Rasa and Chromium.
set -uo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false
.venv/bin/pytest -q -p no:cacheprovider "$@"
rc=$?
# pytest exits 5 when nothing was collected: that is a failure here.
exit $rc
