# shellcheck shell=bash
# Shared by up.sh and down.sh: where the stack's state lives, and the pid records.
# A record is "<pid> <start time>" (field 22 of /proc/<pid>/stat): a pid reused by an
# unrelated process after ours died does not match, so down.sh never signals it.

if [ -z "${CDREXP_STACK_DIR:-}" ]; then
    # root: under /tmp, which PostgreSQL's and MariaDB's service users can reach
    # (~root is 0700); others: the user's cache directory
    if [ "$(id -u)" = 0 ]; then CDREXP_STACK_DIR=/tmp/cdrexp-stack-root
    else CDREXP_STACK_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/cdrexp-stack"; fi
fi
STACK=$CDREXP_STACK_DIR

rand_token() { head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 24; }

start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

record() {   # record NAME PID
    [ -n "$2" ] || return 1
    echo "$2 $(start_time "$2")" > "$STACK/pids/$1.pid"
}

recorded_pid() {   # the recorded pid of NAME if that very process still runs
    local f="$STACK/pids/$1.pid" pid started
    [ -f "$f" ] || return 1
    read -r pid started < "$f"
    [ -n "$pid" ] && [ "$(start_time "$pid")" = "$started" ] && echo "$pid"
}

alive() { recorded_pid "$1" >/dev/null; }

wait_for() {   # wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds (or WHAT,
    local what=$1 seconds=$2 t=0   # when it names a recorded process, has died)
    shift 2
    while ! "$@" >/dev/null 2>&1; do
        if [ -f "$STACK/pids/$what.pid" ] && ! alive "$what"; then
            failed_part "$what exited while starting (logs in $STACK/logs)"
            return 1
        fi
        if [ "$t" -ge $((seconds * 5)) ]; then
            failed_part "$what did not answer within $seconds s (logs in $STACK/logs)"
            return 1
        fi
        sleep 0.2; t=$((t + 1))
    done
}

wait_file() {   # wait_file PATH SECONDS
    local t=0
    while [ ! -s "$1" ]; do
        [ "$t" -ge $(($2 * 5)) ] && return 1
        sleep 0.2; t=$((t + 1))
    done
}
