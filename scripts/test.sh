#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, store conformance, API,
# probe/lab tests) and the official-SDK conformance suite.
#
# PostgreSQL: set VPNMON_TEST_DATABASE_URL (a role with CREATEDB) to run the
# store conformance suite against PostgreSQL too; .ci/run does. Without it
# those cases print why they skip.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked

if [ -f tests/sdk/run.sh ]; then
    cargo build --locked -p vpnmon
    VPNMON_BIN="$PWD/target/debug/vpnmon" bash tests/sdk/run.sh
fi
