#!/usr/bin/env bash
# Start or stop the single OpenSearch 2.19 node that the search tests run against.
#
# Usage: scripts/opensearch-node.sh start|stop|status
#
# `start` builds search-node/ with Maven the first time (Maven Central serves the
# OpenSearch server, its Netty 4 HTTP transport and its common analysis module;
# they are cached in ~/.m2 like any Maven dependency), starts the node on
# 127.0.0.1 with a small heap, waits until it answers, and prints its URL as the
# last line of stdout. Running it on a started node only prints the URL.
#
# Environment:
#   OPENSEARCH_NODE_DIR   node home: data, logs, pid file (default: <repository>/var/opensearch-node)
#   OPENSEARCH_NODE_PORT  HTTP port on 127.0.0.1 (default: 59200); the transport uses port + 100
#   OPENSEARCH_NODE_HEAP  JVM heap, for -Xms and -Xmx (default: 512m)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
project_dir="$repo_root/search-node"
node_dir="${OPENSEARCH_NODE_DIR:-$repo_root/var/opensearch-node}"
port="${OPENSEARCH_NODE_PORT:-59200}"
heap="${OPENSEARCH_NODE_HEAP:-512m}"
pid_file="$node_dir/node.pid"
log_file="$node_dir/node.log"
jar="$project_dir/target/search-node-1.0.jar"
start_timeout_seconds=120

log() {
    echo "opensearch-node: $*" >&2
}

fail() {
    echo "opensearch-node: error: $*" >&2
    exit 1
}

url() {
    echo "http://127.0.0.1:$port"
}

is_running() {
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

answers() {
    curl --silent --fail --max-time 2 "$(url)/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

build() {
    command -v mvn >/dev/null || fail "mvn not found: run scripts/ensure-system-packages.sh --search"
    command -v java >/dev/null || fail "java not found: run scripts/ensure-system-packages.sh --search"
    # Rebuild when the launcher or its dependencies changed since the last build.
    if [ -f "$jar" ] && [ "$jar" -nt "$project_dir/pom.xml" ] \
        && [ -z "$(find "$project_dir/src" -newer "$jar" -print -quit)" ]; then
        return
    fi
    log "building the node launcher with Maven (the first build downloads OpenSearch into ~/.m2)"
    (cd "$project_dir" && mvn -q -B package) >&2 || fail "the Maven build of $project_dir failed (output above)"
}

start() {
    if is_running; then
        answers || wait_until_ready
        log "node already running (pid $(cat "$pid_file"))"
        url
        return
    fi
    build
    mkdir -p "$node_dir"
    log "starting the node on $(url) (log: $log_file)"
    nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j2.disable.jmx=true -Dlog4j2.level=WARN \
        -cp "$jar:$project_dir/target/lib/*" fr.estafette.searchnode.SearchNode "$node_dir" "$port" \
        >"$log_file" 2>&1 </dev/null &
    echo "$!" >"$pid_file"
    wait_until_ready
    log "node ready"
    url
}

wait_until_ready() {
    local waited=0
    until answers; do
        is_running || { tail -n 30 "$log_file" >&2 || true; fail "the node exited during start (last log lines above)"; }
        [ "$waited" -lt "$start_timeout_seconds" ] || fail "the node did not answer on $(url) within ${start_timeout_seconds} s (log: $log_file)"
        sleep 1
        waited=$((waited + 1))
    done
}

stop() {
    if ! is_running; then
        log "node not running"
        rm -f "$pid_file"
        return
    fi
    local pid
    pid="$(cat "$pid_file")"
    log "stopping the node (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pid_file"; return; }
        sleep 1
    done
    fail "the node (pid $pid) did not stop within 30 s"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if is_running && answers; then log "running"; url; else log "not running"; exit 1; fi ;;
    *) echo "Usage: $0 start|stop|status" >&2; exit 2 ;;
esac
