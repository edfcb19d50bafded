#!/bin/sh
# Starts the local PostgreSQL 15 cluster (if it is not answering) and creates
# the role and database the store conformance suite uses. Idempotent: an
# existing role or database is kept. Prints the URL to put in
# VPNMON_TEST_DATABASE_URL; exports nothing. Run as root.
set -eu

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster 15 main start
    i=0
    until pg_isready -q -h 127.0.0.1 -p 5432; do
        i=$((i + 1))
        [ "$i" -ge 30 ] && { echo "PostgreSQL did not come up" >&2; exit 1; }
        sleep 1
    done
fi

psql_postgres() {
    su postgres -c "psql -v ON_ERROR_STOP=1 -qAtc \"$1\""
}

if [ "$(psql_postgres "SELECT 1 FROM pg_roles WHERE rolname = 'vpnmon'")" != "1" ]; then
    psql_postgres "CREATE ROLE vpnmon LOGIN CREATEDB PASSWORD 'vpnmon'"
fi
if [ "$(psql_postgres "SELECT 1 FROM pg_database WHERE datname = 'vpnmon_test'")" != "1" ]; then
    su postgres -c "createdb -O vpnmon vpnmon_test"
fi

echo "postgres://vpnmon:vpnmon@127.0.0.1:5432/vpnmon_test"
