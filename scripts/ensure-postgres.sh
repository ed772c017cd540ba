#!/usr/bin/env bash
# Create (first run) and start a private PostgreSQL cluster for tests and
# benchmarks, then make sure the role, the databases and the unaccent
# extension exist. Running it again on a started cluster only repeats that
# last check.
#
# Usage: scripts/ensure-postgres.sh [--database NAME]
#   --database NAME  also create database NAME (owned by estafette, with
#                    unaccent) and print its URL instead of estafette_test's
#
# Environment:
#   PGDATA_DIR  cluster directory (default: <repository>/var/postgres). It
#               contains data/ (the PostgreSQL data directory), socket/
#               (the Unix socket directory) and server.log.
#   PGPORT      TCP port on 127.0.0.1 (default: 54329)
#   PG_SHARED_BUFFERS  shared_buffers of the server (default: 128MB, the
#               PostgreSQL default, enough for tests). The benchmarks at one
#               million mails use 4GB, as a server with 16 GiB or more would.
#               Read at start only: stop the cluster with
#               scripts/stop-postgres.sh to change it.
#
# Progress lines go to stderr. Stdout gets one line, the SQLAlchemy URL, so
# callers can write: DATABASE_URL="$(scripts/ensure-postgres.sh)".
#
# The cluster is tuned for disposable test data: fsync, synchronous_commit and
# full_page_writes are off, so a machine crash can corrupt it. Never point it
# at data you want to keep.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

PGDATA_DIR="${PGDATA_DIR:-$repo_root/var/postgres}"
PGPORT="${PGPORT:-54329}"
PG_SHARED_BUFFERS="${PG_SHARED_BUFFERS:-128MB}"
role_name="estafette"
role_password="estafette"
test_database="estafette_test"
start_timeout_seconds=30

log() {
    echo "ensure-postgres: $*" >&2
}

fail() {
    echo "ensure-postgres: error: $*" >&2
    exit 1
}

extra_database=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --database)
            [ "$#" -ge 2 ] || fail "--database requires a database name"
            [ -z "$extra_database" ] || fail "--database can be given only once"
            extra_database="$2"
            shift 2
            ;;
        -h|--help)
            sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            fail "unknown option '$1' (expected: [--database NAME])"
            ;;
    esac
done

# Names are interpolated into SQL, so accept only plain lowercase identifiers.
if [ -n "$extra_database" ] && ! [[ "$extra_database" =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
    fail "invalid database name '$extra_database' (use lowercase letters, digits and _)"
fi
if ! [[ "$PGPORT" =~ ^[0-9]+$ ]] || [ "$PGPORT" -lt 1024 ] || [ "$PGPORT" -gt 65535 ]; then
    fail "invalid PGPORT '$PGPORT' (expected a port number from 1024 to 65535)"
fi
if ! [[ "$PG_SHARED_BUFFERS" =~ ^[0-9]+(kB|MB|GB)$ ]]; then
    fail "invalid PG_SHARED_BUFFERS '$PG_SHARED_BUFFERS' (expected a size such as 128MB or 4GB)"
fi

"$script_dir/ensure-system-packages.sh" --postgres >&2

data_dir="$PGDATA_DIR/data"
socket_dir="$PGDATA_DIR/socket"
log_file="$PGDATA_DIR/server.log"

# PostgreSQL refuses to run as root, so root runs the server tools as the
# "postgres" system user that the Debian package creates. Other users run
# them as themselves.
if [ "$(id -u)" -eq 0 ]; then
    getent passwd postgres >/dev/null || fail "system user 'postgres' not found; reinstall the postgresql package"
    cluster_owner="postgres"
    as_owner=(runuser -u postgres --)
else
    cluster_owner="$(id -un)"
    as_owner=()
fi

# Use the binaries of the version that created the data directory, or the
# newest installed version for a new cluster.
if [ -f "$data_dir/PG_VERSION" ]; then
    cluster_version="$(cat "$data_dir/PG_VERSION")"
    pg_bin="/usr/lib/postgresql/$cluster_version/bin"
    [ -x "$pg_bin/pg_ctl" ] || fail "$data_dir was created by PostgreSQL $cluster_version, which is not installed in $pg_bin; install it or delete $PGDATA_DIR"
else
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || fail "no PostgreSQL server found under /usr/lib/postgresql/*/bin"
fi

mkdir -p "$PGDATA_DIR" "$socket_dir"
if [ "$(id -u)" -eq 0 ]; then
    chown "$cluster_owner:" "$PGDATA_DIR" "$socket_dir"
fi
chmod 700 "$PGDATA_DIR" "$socket_dir"
# The owner must reach the directory through every parent (a repository under
# /root is not reachable by the postgres user).
"${as_owner[@]}" test -w "$PGDATA_DIR" \
    || fail "user '$cluster_owner' cannot write to $PGDATA_DIR; set PGDATA_DIR to a directory it can reach"

if [ ! -f "$data_dir/PG_VERSION" ]; then
    log "creating cluster in $data_dir with $pg_bin/initdb"
    # Local (socket) connections are trusted because the socket directory is
    # mode 700, so only the cluster owner and root can reach it. TCP
    # connections need a password.
    "${as_owner[@]}" "$pg_bin/initdb" \
        --pgdata="$data_dir" \
        --username=postgres \
        --encoding=UTF8 \
        --locale=C.UTF-8 \
        --auth-local=trust \
        --auth-host=scram-sha-256 \
        >"$PGDATA_DIR/initdb.log" 2>&1 \
        || { cat "$PGDATA_DIR/initdb.log" >&2; fail "initdb failed in $data_dir (output above)"; }
    echo "include 'estafette.conf'" >>"$data_dir/postgresql.conf"
fi

pg_ctl=("${as_owner[@]}" "$pg_bin/pg_ctl" --pgdata="$data_dir")

if "${pg_ctl[@]}" status >/dev/null 2>&1; then
    # Line 4 of postmaster.pid is the port the running server listens on.
    running_port="$(sed -n '4p' "$data_dir/postmaster.pid")"
    [ "$running_port" = "$PGPORT" ] \
        || fail "the cluster in $data_dir is already running on port $running_port, not $PGPORT; run scripts/stop-postgres.sh first or set PGPORT=$running_port"
    log "cluster already running on 127.0.0.1:$PGPORT"
else
    # Rewritten at each start so that a new PGPORT takes effect.
    "${as_owner[@]}" tee "$data_dir/estafette.conf" >/dev/null <<EOF
# Written by scripts/ensure-postgres.sh at each start, which overwrites any edit.
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$socket_dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = '$PG_SHARED_BUFFERS'
EOF
    log "starting cluster on 127.0.0.1:$PGPORT (log: $log_file)"
    # pg_ctl --wait polls the server like pg_isready does, and it also stops
    # waiting as soon as the postmaster exits (port in use, bad setting), so
    # a failed start is reported at once instead of after the timeout.
    if ! "${pg_ctl[@]}" --log="$log_file" --wait --timeout="$start_timeout_seconds" start >/dev/null; then
        tail -n 20 "$log_file" >&2 || true
        fail "server failed to start or was not ready within ${start_timeout_seconds} s (last log lines above, full log in $log_file)"
    fi
    "$pg_bin/pg_isready" --quiet --host="$socket_dir" --port="$PGPORT" \
        || fail "pg_ctl reported the server started, but pg_isready cannot reach it on $socket_dir port $PGPORT"
    log "cluster ready"
fi

run_sql() {
    local database="$1"
    shift
    # PGOPTIONS hides notices such as "extension already exists, skipping".
    "${as_owner[@]}" env PGOPTIONS="-c client_min_messages=warning" "$pg_bin/psql" --quiet --no-psqlrc --set=ON_ERROR_STOP=1 \
        --host="$socket_dir" --port="$PGPORT" --username=postgres --dbname="$database" "$@"
}

# CREATEDB lets tests create and drop scratch databases (one per pytest worker, for example).
log "ensuring role $role_name"
run_sql postgres <<EOF
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role_name') THEN
        CREATE ROLE $role_name LOGIN CREATEDB PASSWORD '$role_password';
    END IF;
END
\$\$;
EOF

ensure_database() {
    local database="$1"
    log "ensuring database $database with extension unaccent"
    # CREATE DATABASE cannot run inside a DO block, hence \gexec.
    run_sql postgres <<EOF
SELECT 'CREATE DATABASE $database OWNER $role_name'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$database') \gexec
EOF
    run_sql "$database" --command="CREATE EXTENSION IF NOT EXISTS unaccent"
}

ensure_database "$test_database"
url_database="$test_database"
if [ -n "$extra_database" ]; then
    ensure_database "$extra_database"
    url_database="$extra_database"
fi

echo "postgresql+psycopg://$role_name:$role_password@127.0.0.1:$PGPORT/$url_database"
