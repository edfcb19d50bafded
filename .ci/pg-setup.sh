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

# Password logins for the role over the Unix socket too (the multi-node lab
# test reaches the server from network namespaces through
# /var/run/postgresql); before the stock `local all all peer` line.
hba="$(su postgres -c "psql -qAtc 'SHOW hba_file'")"
if ! grep -qE '^local[[:space:]]+all[[:space:]]+vpnmon[[:space:]]' "$hba"; then
    sed -i '0,/^local[[:space:]]/s//local   all             vpnmon                                  scram-sha-256\n&/' "$hba"
    su postgres -c "psql -qAtc 'SELECT pg_reload_conf()'" >/dev/null
fi

echo "postgres://vpnmon:vpnmon@127.0.0.1:5432/vpnmon_test"
