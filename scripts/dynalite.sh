#!/usr/bin/env bash
# Local DynamoDB-protocol server (dynalite, pinned in scripts/dynalite/package-lock.json) for
# tests and benchmarks.
#
#   scripts/dynalite.sh install   install the pinned dynalite into .tools/dynalite (npm ci)
#   scripts/dynalite.sh start     install if needed, start on 127.0.0.1 on a free port (in-memory,
#                                 tables ready at once), wait until it answers, print its URL
#   scripts/dynalite.sh url       print the URL of the running server (exit 1 if none)
#   scripts/dynalite.sh stop      stop it
#
# Every command is idempotent: start prints the running server's URL if one is up, stop does
# nothing if none is. State lives in .run/dynalite.{pid,port,log}. Requires node and npm.
#
# Example:
#   URL=$(scripts/dynalite.sh start)
#   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
#     .venv/bin/pytest --store "dynamodb://lakekv_test?region=us-east-1&endpoint=$URL"
#   scripts/dynalite.sh stop
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEC="$ROOT/scripts/dynalite"
TOOLS="$ROOT/.tools/dynalite"
RUN="$ROOT/.run"
PIDFILE="$RUN/dynalite.pid"
PORTFILE="$RUN/dynalite.port"
LOGFILE="$RUN/dynalite.log"
CLI="$TOOLS/node_modules/dynalite/cli.js"
SERVE="$SPEC/serve.js"  # runs $CLI, surviving clients that disconnect mid-request
START_TIMEOUT=15

die() { echo "dynalite.sh: $*" >&2; exit 1; }

installed() {
    [[ -f "$CLI" ]] && cmp -s "$SPEC/package-lock.json" "$TOOLS/package-lock.json"
}

do_install() {
    command -v node >/dev/null || die "node is not installed"
    command -v npm >/dev/null || die "npm is not installed"
    if installed; then
        return 0
    fi
    mkdir -p "$TOOLS"
    cp "$SPEC/package.json" "$SPEC/package-lock.json" "$TOOLS/"
    # The native store ships prebuilt binaries that load at run time: no install scripts needed.
    (cd "$TOOLS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) \
        || die "npm ci failed in $TOOLS"
    [[ -f "$CLI" ]] || die "dynalite is missing after npm ci ($CLI)"
}

# The pid of our running server, or nothing.
running_pid() {
    [[ -f "$PIDFILE" ]] || return 0
    local pid
    pid="$(cat "$PIDFILE")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q dynalite; then
        echo "$pid"
    fi
}

answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

print_url() {
    echo "http://127.0.0.1:$(cat "$PORTFILE")"
}

do_start() {
    mkdir -p "$RUN"
    exec 9>"$RUN/dynalite.lock"
    flock 9
    if [[ -n "$(running_pid)" ]] && answers "$(cat "$PORTFILE")"; then
        print_url
        return 0
    fi
    do_stop_locked
    do_install
    local attempt port pid waited
    for attempt in 1 2 3; do
        port="$(free_port)"
        nohup setsid node "$SERVE" "$CLI" --host 127.0.0.1 --port "$port" \
            --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 \
            >"$LOGFILE" 2>&1 </dev/null 9>&- &
        pid=$!
        echo "$pid" >"$PIDFILE"
        echo "$port" >"$PORTFILE"
        waited=0
        while kill -0 "$pid" 2>/dev/null; do
            if answers "$port"; then
                print_url
                return 0
            fi
            if ((waited >= START_TIMEOUT * 10)); then
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        echo "dynalite.sh: start attempt $attempt on port $port failed:" >&2
        tail -n 5 "$LOGFILE" >&2 || true
        do_stop_locked
    done
    die "dynalite did not start (log: $LOGFILE)"
}

do_stop_locked() {
    local pid i
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE" "$PORTFILE"
}

do_stop() {
    mkdir -p "$RUN"
    exec 9>"$RUN/dynalite.lock"
    flock 9
    do_stop_locked
}

do_url() {
    if [[ -n "$(running_pid)" ]] && [[ -f "$PORTFILE" ]]; then
        print_url
    else
        die "not running"
    fi
}

case "${1:-}" in
    install) do_install ;;
    start) do_start ;;
    stop) do_stop ;;
    url) do_url ;;
    *) echo "usage: $0 install|start|stop|url" >&2; exit 2 ;;
esac
