# Two entry points for a fresh machine (see README): `make run` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/uv/bin/uv
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: run test install lint bench clean

$(UV):
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV)
	$(UV) sync --frozen --all-extras --quiet

## The main job on the embedded default (SQLite).
run: install
	scripts/run.sh

## Everything the tests need (PostgreSQL up, DynamoDB-protocol server), then lint, types, tests.
test: install
	scripts/test.sh

## Every benchmark, against throwaway servers (tests/servers.py); each prints its own ratios.
bench: install
	.venv/bin/python tests/servers.py run --engines postgres,dynamodb,redis,redis-cluster,etcd -- sh -c '\
	  .venv/bin/python bench/ops.py --backend sqlite,postgres,kvlibs,redis,redis-cluster,etcd && \
	  .venv/bin/python bench/dynamodb.py && \
	  .venv/bin/python bench/migrate.py --to redis,redis-cluster,etcd && .venv/bin/python bench/refs.py'

lint: install
	.venv/bin/ruff check src tests bench scripts
	.venv/bin/ruff format --check src tests bench scripts
	.venv/bin/mypy src

clean:
	rm -rf .run .tools .venv
