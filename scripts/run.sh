#!/usr/bin/env bash
# The main job on the embedded default (SQLite): generate a lakeFS-shaped sample database,
# migrate it to a second SQLite file, verify that both hold the same data, print the summary.
# Set ENTRIES to change the size (default 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
rm -f .run/source.db* .run/target.db*
entries="${ENTRIES:-100000}"
lakekv=.venv/bin/lakekv
src="sqlite:///.run/source.db"
dst="sqlite:///.run/target.db"

echo "== lakekv sample --to $src --entries $entries"
$lakekv sample --to "$src" --entries "$entries" --seed 1
echo "== lakekv copy --from $src --to $dst"
$lakekv copy --from "$src" --to "$dst"
echo "== lakekv verify --from $src --to $dst"
$lakekv verify --from "$src" --to "$dst"
echo "== lakekv lakefs repos (on the copy)"
$lakekv --store "$dst" lakefs repos
