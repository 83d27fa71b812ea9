# Two entry points for a fresh machine (see README): `make run` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/uv/bin/uv
export UV_PROJECT_ENVIRONMENT := .venv

# The lakeFS release the end-to-end tests run (built from its Go module; the only place it is named).
LAKEFS_VERSION := v1.86.0
LAKEFS_MODULE := github.com/treeverse/lakefs
LAKEFS := .tools/lakefs/$(LAKEFS_VERSION)/lakefs
export LAKEKV_LAKEFS := $(abspath $(LAKEFS))
GO ?= go

# The badger:// driver's helper, built from Badger's own Go module (the version lakeFS pins);
# the driver finds it in .tools/badger of the checkout it runs from.
BADGER_HELPER_SRC := src/lakekv/kv/drivers/badger/helper
BADGER_HELPER := .tools/badger/lakekv-badger

.PHONY: run test test-lakefs lakefs lakefs-if-go badger-helper badger-helper-if-go install lint bench clean

$(UV):
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

## Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on CI machines)
## Python would otherwise compile every module of a command again at each start (about 1 s).
install: $(UV) badger-helper-if-go
	$(UV) sync --frozen --all-extras --quiet --compile-bytecode
	.venv/bin/python -m compileall -q src

## The main job on the embedded default (SQLite).
run: install
	scripts/run.sh

## Everything the tests need (PostgreSQL up, DynamoDB-protocol server), then lint, types, tests.
test: install lakefs-if-go
	scripts/test.sh

## The lakeFS end-to-end tests alone, with the servers they need.
test-lakefs: install lakefs
	.venv/bin/python tests/servers.py run --engines postgres,dynamodb -- \
		.venv/bin/pytest -m lakefs tests/test_lakefs_e2e.py

## lakeFS from its Go module, cached by version under .tools/lakefs/. The module's go.mod has a
## replace directive, so `go install MODULE@VERSION` cannot build it: download the module and
## build its cmd/lakefs inside it (without the web UI, which the module does not ship).
lakefs: $(LAKEFS)

$(LAKEFS):
	@command -v $(GO) >/dev/null || { echo "Go is not installed: cannot build lakeFS $(LAKEFS_VERSION)" >&2; exit 1; }
	@mkdir -p $(@D)
	@dir="$$($(GO) mod download -json $(LAKEFS_MODULE)@$(LAKEFS_VERSION) \
		| $(PYTHON) -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir", "")); \
			d.get("Dir") or sys.exit(d.get("Error", "no module directory"))')"; \
	test -n "$$dir" || { echo "cannot download $(LAKEFS_MODULE)@$(LAKEFS_VERSION)" >&2; exit 1; }; \
	echo "building lakeFS $(LAKEFS_VERSION) from $$dir (the first build takes several minutes)" >&2; \
	cd "$$dir" && $(GO) build -o $(abspath $@).tmp \
		-ldflags "-X $(LAKEFS_MODULE)/pkg/version.Version=$(LAKEFS_VERSION:v%=%)" ./cmd/lakefs
	@mv $@.tmp $@

## `make test` builds lakeFS when Go is there. Without Go the lakeFS tests skip locally; under CI
## the build is required, so a missing Go fails the run.
lakefs-if-go:
	@if command -v $(GO) >/dev/null || [ -n "$$CI" ]; then $(MAKE) -s --no-print-directory lakefs; \
	else echo "Go is not installed: the lakeFS end-to-end tests will be skipped" >&2; fi

## The badger:// helper (Go), rebuilt when its source changes.
badger-helper: $(BADGER_HELPER)

$(BADGER_HELPER): $(BADGER_HELPER_SRC)/main.go $(BADGER_HELPER_SRC)/go.mod $(BADGER_HELPER_SRC)/go.sum
	@command -v $(GO) >/dev/null || { echo "Go is not installed: cannot build the badger:// helper" >&2; exit 1; }
	@mkdir -p $(@D)
	$(GO) build -C $(BADGER_HELPER_SRC) -trimpath -o $(abspath $@).tmp .
	@mv $@.tmp $@

## `make install` builds the helper when Go is there (without Go badger:// says how to get it);
## under CI it is required.
badger-helper-if-go:
	@if command -v $(GO) >/dev/null || [ -n "$$CI" ]; then $(MAKE) -s --no-print-directory badger-helper; \
	else echo "Go is not installed: the badger:// driver and its tests will be unavailable" >&2; fi

## Every benchmark, against throwaway servers (tests/servers.py); each prints its own ratios.
bench: install
	.venv/bin/python tests/servers.py run --engines postgres,dynamodb,mysql,redis,redis-cluster,etcd -- sh -c '\
	  .venv/bin/python bench/startup.py && \
	  .venv/bin/python bench/ops.py --backend sqlite,postgres,kvlibs,mysql,lmdb,redis,redis-cluster,etcd && \
	  .venv/bin/python bench/dynamodb.py && \
	  .venv/bin/python bench/migrate.py --lmdb --to redis,redis-cluster,etcd && .venv/bin/python bench/refs.py && \
	  .venv/bin/python bench/observe.py overhead --backend sqlite,postgres && \
	  .venv/bin/python bench/observe.py writer --backend postgres && \
	  .venv/bin/python bench/badger.py'

lint: install
	.venv/bin/ruff check src tests bench scripts examples
	.venv/bin/ruff format --check src tests bench scripts examples
	.venv/bin/mypy src
	.venv/bin/mypy --strict examples/lakekv-example-driver/src examples/lakekv-example-driver/tests

clean:
	rm -rf .run .tools .venv
