#!/usr/bin/env bash
# Runs the whole suite: unit tests, then integration tests against real Redis, PostgreSQL, Rasa,
# Dovecot/SMTP and Chromium. The NLU model is trained first (skipped when the data is unchanged).
set -uo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false
.venv/bin/ruff check app bot channels intents handoff tests bench || exit 1
# The layers (application > channels | handoff > core > intents; pyproject [tool.importlinter]) and
# the types of the product packages and the benches (pyproject [tool.mypy]; unused ignores are errors).
.venv/bin/lint-imports || exit 1
.venv/bin/switchboard train || exit 1

# The container images (tests/integration/test_image.py) build in the background while the checks
# and the other tests run: on a machine with an empty podman store the build is 5-8 minutes, mostly
# downloads. The test waits for $SWITCHBOARD_TEST_IMAGE_BUILD/rc. Only for a whole-suite run (no
# test paths given); SWITCHBOARD_TEST_IMAGE_BUILD=0 turns it off (the test then builds by itself).
build_pid=
whole_suite=1
for a in "$@"; do case "$a" in -*) ;; *) whole_suite=0;; esac; done
if [ "$whole_suite" = 1 ] && [ "${SWITCHBOARD_TEST_IMAGE_BUILD:-}" != 0 ] && command -v podman >/dev/null; then
  SWITCHBOARD_TEST_IMAGE_BUILD=$(mktemp -d /tmp/switchboard-image-build.XXXXXX)
  export SWITCHBOARD_TEST_IMAGE_BUILD
  # Same model, tag and environment as the test's own build (tests/integration/test_image.py).
  IMAGE_TAG=${SWITCHBOARD_TEST_IMAGE_TAG:-test} setsid bash -c 'bash scripts/image.sh >"$1/log" 2>&1; echo $? >"$1/rc.tmp"; mv "$1/rc.tmp" "$1/rc"' _ \
    "$SWITCHBOARD_TEST_IMAGE_BUILD" </dev/null &
  build_pid=$!
  echo "image build started in the background (log: $SWITCHBOARD_TEST_IMAGE_BUILD/log)"
fi
stop_build() { [ -n "$build_pid" ] && kill -TERM -- "-$build_pid" 2>/dev/null; wait 2>/dev/null; }
trap stop_build EXIT

.venv/bin/mypy || exit 1
bash scripts/audit.sh || exit 1
.venv/bin/pytest -q -p no:cacheprovider --durations=15 "$@"
exit $?
