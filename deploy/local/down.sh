#!/usr/bin/env bash
# Stops what deploy/local/up.sh started, and nothing else: each process recorded under
# $CDREXP_STACK_DIR/pids (pid and start time), with the processes it started itself
# (MLflow's workers, PostgreSQL's backends), newest component first. SIGTERM, then
# SIGKILL after 15 s. State (databases, keys) stays for the next up.sh; add --purge to
# delete the stack directory as well.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=deploy/local/_common.sh
. "$HERE/_common.sh"

descendants() {   # every process below $1, deepest last
    local child
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

stop() {
    local name=$1 pid pids t=0
    pid=$(recorded_pid "$name") || { rm -f "$STACK/pids/$name.pid"; return; }
    pids="$pid $(descendants "$pid")"
    # PostgreSQL: SIGINT is its "fast" shutdown (SIGTERM waits for every client)
    local sig=TERM
    [ "$name" = postgres ] && sig=INT
    kill -$sig $pid 2>/dev/null
    [ "$name" = postgres ] || kill -TERM $pids 2>/dev/null
    while [ $t -lt 75 ]; do
        local left=""
        for p in $pids; do [ -d "/proc/$p" ] && left="$left $p"; done
        [ -z "$left" ] && break
        sleep 0.2; t=$((t + 1))
    done
    for p in $pids; do [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null; done
    rm -f "$STACK/pids/$name.pid"
    echo "cdrexp-stack: stopped $name (pid $pid)" >&2
}

[ -d "$STACK/pids" ] || { echo "cdrexp-stack: nothing recorded in $STACK" >&2; exit 0; }
for name in slurmd slurmctld slurmdbd slurmdb munge mlflow s3 postgres; do
    stop "$name"
done
if [ "${1:-}" = "--purge" ]; then
    rm -rf "$STACK"
    echo "cdrexp-stack: removed $STACK" >&2
fi
