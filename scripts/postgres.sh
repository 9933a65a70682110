#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the store tests and benchmarks.
#
#   scripts/postgres.sh start    initialise (once) and start; idempotent
#   scripts/postgres.sh stop     stop it (the data directory stays)
#   scripts/postgres.sh status   exit 0 when it accepts connections
#   scripts/postgres.sh url      print the SQLAlchemy URL of the test database
#
# Environment: ANOMALY_PG_DIR (data folder, default /tmp/anomaly-pg), ANOMALY_PG_PORT (default 25432:
# below Linux's ephemeral range, 32768-60999, so no client connection's local port can hold it).
# Uses Debian's PostgreSQL 15 binaries. initdb refuses to run as root, so as root the server runs as
# the `postgres` system user (created if missing).
set -euo pipefail

PG_DIR=${ANOMALY_PG_DIR:-/tmp/anomaly-pg}
PG_PORT=${ANOMALY_PG_PORT:-25432}
PG_HOST=127.0.0.1
PG_USER=anomaly
PG_PASSWORD=anomaly
PG_DB=anomaly_test
DATA="$PG_DIR/data"
LOG="$PG_DIR/server.log"

find_bin() {
    local name=$1
    if [ -x "/usr/lib/postgresql/15/bin/$name" ]; then
        echo "/usr/lib/postgresql/15/bin/$name"
    elif command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
    else
        echo "PostgreSQL's $name is not installed: run \`apt-get install -y postgresql\`" >&2
        exit 3
    fi
}

# Run a command as the server's owner: ourselves, or `postgres` when we are root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_owner() {
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir "$PG_DIR" --shell /usr/sbin/nologin postgres
    fi
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PG_DIR"
    fi
}

ready() {
    as_owner "$(find_bin pg_isready)" -q -h "$PG_HOST" -p "$PG_PORT" -d postgres
}

psql_admin() {
    as_owner "$(find_bin psql)" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres "$@"
}

init_cluster() {
    local initdb pwfile
    initdb=$(find_bin initdb)
    pwfile=$(as_owner mktemp "$PG_DIR/pw.XXXXXX")
    echo "$PG_PASSWORD" | as_owner tee "$pwfile" >/dev/null
    as_owner "$initdb" -D "$DATA" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log"
    rm -f "$pwfile"
}

start() {
    local pg_ctl
    pg_ctl=$(find_bin pg_ctl)
    find_bin initdb >/dev/null
    ensure_owner
    if [ ! -s "$DATA/PG_VERSION" ]; then
        init_cluster
    fi
    if ! ready 2>/dev/null; then
        if ! as_owner "$pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-c listen_addresses=$PG_HOST -c port=$PG_PORT -c unix_socket_directories=$PG_DIR" start >/dev/null; then
            echo "PostgreSQL did not start on $PG_HOST:$PG_PORT; the end of $LOG:" >&2
            tail -n 20 "$LOG" >&2 || true
            exit 1
        fi
    fi
    psql_admin <<SQL
SELECT 'CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD ''$PG_PASSWORD'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER') \gexec
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
    echo "PostgreSQL listening on $PG_HOST:$PG_PORT (data in $DATA)"
}

stop() {
    if [ -s "$DATA/PG_VERSION" ] && ready 2>/dev/null; then
        as_owner "$(find_bin pg_ctl)" -D "$DATA" -m fast -w stop >/dev/null
    fi
    echo "PostgreSQL on port $PG_PORT stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if ready; then echo "running on $PG_HOST:$PG_PORT"; else echo "not running"; exit 1; fi
        ;;
    url) echo "postgresql+psycopg://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB" ;;
    *)
        echo "usage: $0 start|stop|status|url" >&2
        exit 2
        ;;
esac
