#!/usr/bin/env bash
# Stop the private PostgreSQL cluster started by scripts/ensure-postgres.sh.
# Exits 0 when the cluster is not running or was never created.
#
# Environment: PGDATA_DIR, as for ensure-postgres.sh (default: <repository>/var/postgres).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
PGDATA_DIR="${PGDATA_DIR:-$repo_root/var/postgres}"
data_dir="$PGDATA_DIR/data"

if [ ! -f "$data_dir/PG_VERSION" ]; then
    echo "stop-postgres: no cluster in $data_dir, nothing to stop"
    exit 0
fi

pg_ctl_path="/usr/lib/postgresql/$(cat "$data_dir/PG_VERSION")/bin/pg_ctl"
if [ ! -x "$pg_ctl_path" ]; then
    echo "stop-postgres: error: $pg_ctl_path not found, so the cluster in $data_dir cannot be stopped" >&2
    exit 1
fi

# PostgreSQL refuses to run as root, so root runs pg_ctl as the postgres system user.
if [ "$(id -u)" -eq 0 ]; then
    pg_ctl=(runuser -u postgres -- "$pg_ctl_path" --pgdata="$data_dir")
else
    pg_ctl=("$pg_ctl_path" --pgdata="$data_dir")
fi

if ! "${pg_ctl[@]}" status >/dev/null 2>&1; then
    echo "stop-postgres: cluster in $data_dir is not running"
    exit 0
fi

echo "stop-postgres: stopping cluster in $data_dir"
"${pg_ctl[@]}" --mode=fast stop >/dev/null
echo "stop-postgres: stopped"
