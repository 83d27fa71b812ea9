#!/usr/bin/env bash
# Run lint, type checks and the whole test suite with every driver required.
# Starts what the tests need: PostgreSQL (if it is down) and a local DynamoDB-protocol server.
# Extra arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-}"

PG_URL="${LAKEKV_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"

ensure_postgres() {
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
    echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && return 0
        sleep 1
    done
    echo "PostgreSQL did not start" >&2
    return 1
}

ensure_postgres

stores=(--store "memory://" --store "sqlite:///{tmp}/lakekv-test.db" --store "$PG_URL")

if [ -x scripts/dynalite.sh ]; then
    DYNAMO_ENDPOINT="$(scripts/dynalite.sh start)"
    trap 'scripts/dynalite.sh stop >/dev/null 2>&1 || true' EXIT
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
    export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
    stores+=(--store "dynamodb://lakekv_test?region=us-east-1&endpoint=${DYNAMO_ENDPOINT}")
fi

# Redis, Redis Cluster and etcd, from the servers tests/servers.py starts (or existing ones).
for var in LAKEKV_TEST_REDIS LAKEKV_TEST_REDIS_CLUSTER LAKEKV_TEST_ETCD; do
    if [[ -n "${!var:-}" ]]; then
        stores+=(--store "${!var}")
    fi
done

echo "== ruff"
.venv/bin/ruff check src tests bench scripts
.venv/bin/ruff format --check src tests bench scripts
echo "== mypy --strict"
.venv/bin/mypy src
echo "== pytest"
# CI=1 makes an unreachable backend a failure instead of a skip.
CI="${CI:-1}" .venv/bin/pytest "${stores[@]}" "$@"
