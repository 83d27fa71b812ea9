#!/usr/bin/env bash
# The main job on the embedded default (SQLite): a short demonstration of the store.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
export LAKEKV_STORE="sqlite:///.run/demo.db"
lakekv=.venv/bin/lakekv
$lakekv set demo greeting "hello, lakekv"
$lakekv set --if-absent demo counter 1 || true
$lakekv get demo greeting
$lakekv scan demo --json
$lakekv partitions
