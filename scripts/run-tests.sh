#!/usr/bin/env bash
# Runs the whole suite: unit tests, then integration tests against real Redis, PostgreSQL, Rasa,
# Dovecot/SMTP and Chromium. The NLU model is trained first (skipped when the data is unchanged).
set -uo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false
.venv/bin/ruff check app bot channels intents handoff tests || exit 1
# The layers (application > channels | handoff > core > intents; pyproject [tool.importlinter]) and
# the types of the product packages (pyproject [tool.mypy]; unused ignores are errors).
.venv/bin/lint-imports || exit 1
.venv/bin/mypy || exit 1
bash scripts/audit.sh || exit 1
.venv/bin/switchboard train || exit 1
.venv/bin/pytest -q -p no:cacheprovider --durations=15 "$@"
exit $?
