#!/bin/sh
# Bytes on disk per raw window and per rollup row, per engine: a simulated
# stretch of probing for N monitors written through MeasurementStore::insert_points
# with fixed timestamps (crates/store/examples/row_sizes.rs). Appends one JSON
# line per engine to bench/results/row-sizes.jsonl.
#
#   bench/row_sizes.sh [MONITORS] [HOURS]         (defaults: 200 monitors, 24 h)
#   VPNMON_BENCH_DATABASE_URL=postgres://... bench/row_sizes.sh   also measures PostgreSQL
#                                                 (the database must be empty: a fresh one)
set -eu
monitors=${1:-200}
hours=${2:-24}
out=bench/results/row-sizes.jsonl
cargo build --release -q -p store --example row_sizes
bin=target/release/examples/row_sizes
commit=$(git rev-parse --short HEAD)
run() {
  line=$("$bin" --monitors "$monitors" --hours "$hours" "$@")
  echo "$line"
  echo "$line" | sed "s/^{/{\"commit\":\"$commit\",\"date\":\"$(date -u +%FT%TZ)\",/" >> "$out"
}
run
if [ -n "${VPNMON_BENCH_DATABASE_URL:-}" ]; then
  run --database-url "$VPNMON_BENCH_DATABASE_URL"
fi
