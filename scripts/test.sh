#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, store conformance, API,
# probe/lab tests, the dashboard in Chromium), the dashboard's JS unit tests
# and the official-SDK conformance suite.
#
# PostgreSQL: set VPNMON_TEST_DATABASE_URL (a role with CREATEDB) to run the
# store conformance suite against PostgreSQL too; .ci/run does. Without it
# those cases print why they skip.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked

# The dashboard's pure JS logic (loss bands, range -> period, gaps, legend).
# The browser test itself runs inside `cargo test` (crates/vpnmon/tests/
# dashboard.rs): it needs Debian's chromium and `npm ci` in tests/browser,
# and says why it skips without them (VPNMON_REQUIRE_BROWSER=1 fails instead).
if command -v node >/dev/null; then
    node --test tests/browser/unit/
else
    echo "skipping the dashboard's JS unit tests: node is not installed"
fi

if [ -f tests/sdk/run.sh ]; then
    cargo build --locked -p vpnmon
    VPNMON_BIN="$PWD/target/debug/vpnmon" bash tests/sdk/run.sh
fi
