#!/usr/bin/env bash
# Lint, type checks, then the whole test suite with every driver required, against throwaway
# servers that tests/servers.py starts on free loopback ports and stops at the end (also on a
# failure or Ctrl-C). A LAKEKV_TEST_<ENGINE> variable that is set points the run at an existing
# server instead. Extra arguments are passed to pytest: scripts/test.sh -k seek -x
# Without them, the out-of-tree example driver's conformance suite runs last.
set -euo pipefail
cd "$(dirname "$0")/.."

# The engines whose drivers the suite runs; each one's server is started for the run.
ENGINES="${LAKEKV_TEST_ENGINES:-postgres,dynamodb,mysql,redis,redis-cluster,etcd}"
# The out-of-tree driver that proves a third-party package can join: linted, type-checked, and
# its conformance suite run after the project's own tests.
EXAMPLE=examples/lakekv-example-driver

if [[ "${1:-}" != "--inside-servers" ]]; then
    echo "== ruff"
    .venv/bin/ruff check src tests bench scripts examples
    .venv/bin/ruff format --check src tests bench scripts examples
    echo "== mypy --strict"
    .venv/bin/mypy src
    .venv/bin/mypy --strict "$EXAMPLE/src" "$EXAMPLE/tests"
    echo "== servers ($ENGINES)"
    exec .venv/bin/python tests/servers.py run --engines "$ENGINES" -- "$0" --inside-servers "$@"
fi
shift

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

stores=(--store "memory://" --store "sqlite:///{tmp}/lakekv-test.db")
stores+=(--store "lmdb:///{tmp}/lakekv-test.lmdb")
stores+=(--store "badger:///{tmp}/lakekv-test.badger")
if [[ -n "${LAKEKV_TEST_POSTGRES:-}" ]]; then
    stores+=(--store "$LAKEKV_TEST_POSTGRES")
fi
if [[ -n "${LAKEKV_TEST_DYNAMODB:-}" ]]; then
    stores+=(--store "dynamodb://lakekv_test?region=us-east-1&endpoint=${LAKEKV_TEST_DYNAMODB}")
fi
if [[ -n "${LAKEKV_TEST_MYSQL:-}" ]]; then
    stores+=(--store "$LAKEKV_TEST_MYSQL")
fi

# Redis, Redis Cluster and etcd, from the servers tests/servers.py starts (or existing ones).
for var in LAKEKV_TEST_REDIS LAKEKV_TEST_REDIS_CLUSTER LAKEKV_TEST_ETCD; do
    if [[ -n "${!var:-}" ]]; then
        stores+=(--store "${!var}")
    fi
done

# With CI set (as in .ci/run) a store that cannot be reached fails the run; locally it skips.
# The 25 slowest tests are listed at the end: the suite's time is watched (≤ 15 minutes).
if [[ $# -eq 0 ]]; then
    # The whole suite on LAKEKV_TEST_WORKERS processes (pytest-xdist; each has its own
    # PostgreSQL database, see tests/conftest.py), then the tests that change a server for
    # every client (marked serial) alone. Much of a test's time is spent waiting for a
    # server, so two workers on two cores finish sooner than one.
    workers="${LAKEKV_TEST_WORKERS:-2}"
    echo "== pytest ($workers workers)"
    .venv/bin/pytest "${stores[@]}" -n "$workers" --dist loadgroup -m "not serial" \
        --durations=25
    echo "== pytest (serial)"
    .venv/bin/pytest "${stores[@]}" -m serial
else
    echo "== pytest"
    .venv/bin/pytest "${stores[@]}" --durations=25 "$@"
fi

# The example's suite runs in the full run only: extra arguments select part of the project's.
if [[ $# -eq 0 ]]; then
    echo "== pytest $EXAMPLE"
    # Installed into the project's environment, registered by its entry point as a user's
    # would be; --no-deps keeps the lakekv already installed (this tree, editable) as it is.
    .tools/uv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e "$EXAMPLE"
    .venv/bin/pytest --store "jsonfile:///{tmp}/example.json" "$EXAMPLE/tests"
fi
