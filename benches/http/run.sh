#!/usr/bin/env bash
# /readyz on loopback: runward against the floor (a bare axum server answering a constant
# 200), a Node peer (@godaddy/terminus) and a Python peer (FastAPI + fast-healthchecks), 20 HTTP
# dependency checks each, at 1, 64 and 1,000 connections, in two scenarios:
#
#   healthy  20 dependencies answer at once;
#   hanging  19 answer at once, 1 accepts the connection and never answers (30 s).
#
# For each server: start it, wait until it answers, warm up, run wrk for a fixed time, stop it.
# Prints requests per second, p50 and p99 latency, the ratio to the floor and runward / peer.
#
#   benches/http/run.sh                  # everything (installs what it needs)
#   DURATION=30 LOADS="64" benches/http/run.sh
#   SCENARIOS=hanging SERVERS="runward node-terminus" benches/http/run.sh
#   SKIP_BUILD=1 benches/http/run.sh     # reuse target/release/runward
#
# All traffic stays on 127.0.0.1. Every process the script starts is stopped on exit.
# The output is also saved under benches/http/results/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

DURATION="${DURATION:-10}"          # seconds measured per server
WARMUP="${WARMUP:-5}"               # seconds of load before the measurement
THREADS="${THREADS:-2}"             # wrk threads (at most one per connection)
LOADS="${LOADS:-1 64 1000}"         # wrk connections, one measurement each
ROUNDS="${ROUNDS:-3}"               # rounds alternating runward and the floor; the median counts
SCENARIOS="${SCENARIOS:-healthy hanging}"
SERVERS="${SERVERS:-axum-floor runward runward-status-only node-terminus python-fastapi}"

FAST_PORT=18081      # the 19 (or 20) healthy dependencies: fixed in runward*.toml
HANG_PORT=18082      # the hanging dependency: fixed in runward.toml
declare -A PORT=([floor]=18081 [axum-floor]=18084 [runward]=18080 [runward-status-only]=18083 [node-terminus]=18090 [python-fastapi]=18100)

RESULTS_DIR="$HERE/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$RESULTS_DIR/$STAMP"
mkdir -p "$WORK"
LOG="$WORK/run.txt"

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" | tee -a "$LOG"; }
die() { say "error: $*"; exit 1; }

# Starts a command in the background, output to $WORK/<name>.log; sets LAST_PID.
start() {
    local name="$1"; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# Stops one process started by `start`.
stop() {
    local pid="$1" rest=() p
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ "$p" == "$pid" ]] || rest+=("$p"); done
    PIDS=("${rest[@]}")
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until `curl` on the URL returns the expected status code (and body pattern, if given).
wait_for() {
    local url="$1" code="$2" pattern="${3:-}" seconds="${4:-60}" got body
    for _ in $(seq $((seconds * 10))); do
        body="$(curl -s -m 5 -o - -w '\n%{http_code}' "$url" 2>/dev/null || true)"
        got="${body##*$'\n'}"
        if [[ "$got" == "$code" ]] && { [[ -z "$pattern" ]] || grep -q -- "$pattern" <<<"$body"; }; then
            return 0
        fi
        sleep 0.1
    done
    die "$url did not answer $code${pattern:+ matching '$pattern'} within ${seconds} s (last: ${got:-none})"
}

install() {
    if ! command -v wrk >/dev/null; then
        say "installing wrk (apt)"
        apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    fi
    command -v node >/dev/null || die "node is needed for the dependency server and the Node peer"
    if [[ " $SERVERS " == *" node-terminus "* && ! -d "$HERE/node-terminus/node_modules/@godaddy/terminus" ]]; then
        say "installing the Node peer (npm ci)"
        (cd "$HERE/node-terminus" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
    if [[ " $SERVERS " == *" python-fastapi "* ]]; then
        if [[ ! -x "$HERE/.venv/bin/python" ]]; then
            say "creating benches/http/.venv"
            python3 -m venv "$HERE/.venv"
        fi
        "$HERE/.venv/bin/pip" install -q --disable-pip-version-check -r "$HERE/python-fastapi/requirements.txt"
    fi
    local release="${CARGO_TARGET_DIR:-$ROOT/target}/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}release"
    RUNWARD="$release/runward"
    FLOOR="$release/examples/http_floor"
    if [[ " $SERVERS " == *" runward"* || " $SERVERS " == *" axum-floor "* ]]; then
        if [[ -z "${SKIP_BUILD:-}" ]]; then
            say "building runward and the floor (cargo build --release -p runward-cli -p runward --example http_floor)"
            (cd "$ROOT" && cargo build --release -p runward-cli && cargo build --release -p runward --example http_floor) \
                2>&1 | tail -n 3 | tee -a "$LOG"
            [[ "${PIPESTATUS[0]}" == 0 ]] || die "the build failed"
        fi
        [[ -x "$RUNWARD" ]] || die "$RUNWARD is missing: build it with cargo build --release -p runward-cli"
        [[ -x "$FLOOR" ]] || die "$FLOOR is missing: build it with cargo build --release -p runward --example http_floor"
    fi
}

# Starts server $1 for scenario $2 and waits until it is ready; sets SERVER_PID.
start_server() {
    local server="$1" scenario="$2" port="${PORT[$1]}" config hang_env=()
    [[ "$scenario" == hanging ]] && hang_env=(HANG_URL="http://127.0.0.1:$HANG_PORT")
    case "$server" in
        floor)
            # The dependency server's own `200 ok`: no checks at all, what the machine gives a
            # do-nothing HTTP server. Already running.
            SERVER_PID=$DEPS_PID
            return
            ;;
        axum-floor)
            # A bare axum server answering runward's status-only bytes: the floor.
            start "$scenario-$server" "$FLOOR" "127.0.0.1:$port"
            SERVER_PID=$LAST_PID
            wait_for "http://127.0.0.1:$port/readyz" 200
            return
            ;;
        runward | runward-status-only)
            config="$HERE/runward.toml"
            [[ "$scenario" == healthy ]] && config="$HERE/runward-healthy.toml"
            if [[ "$server" == runward-status-only ]]; then
                # Same checks; nobody gets details, so /readyz takes the status-only path.
                sed 's/^drain_ms = 0$/drain_ms = 0\ndetails = "none"/' "$config" >"$WORK/$scenario-status-only.toml"
                config="$WORK/$scenario-status-only.toml"
            fi
            start "$scenario-$server" "$RUNWARD" serve --config "$config" --addr "127.0.0.1:$port"
            ;;
        node-terminus)
            start "$scenario-$server" env PORT="$port" FAST_URL="http://127.0.0.1:$FAST_PORT" "${hang_env[@]}" \
                node "$HERE/node-terminus/server.js"
            ;;
        python-fastapi)
            start "$scenario-$server" env FAST_URL="http://127.0.0.1:$FAST_PORT" "${hang_env[@]}" \
                "$HERE/.venv/bin/uvicorn" --app-dir "$HERE/python-fastapi" app:app \
                --host 127.0.0.1 --port "$port" --log-level warning --no-access-log
            ;;
        *) die "unknown server $server" ;;
    esac
    SERVER_PID=$LAST_PID
    wait_for "http://127.0.0.1:$port/livez" 200
    if [[ "$server" == runward* ]]; then
        if [[ "$scenario" == healthy ]]; then
            wait_for "http://127.0.0.1:$port/readyz" 200
        else
            # The first run of the hanging check must have ended (at its 2500 ms deadline).
            wait_for "http://127.0.0.1:$port/metrics" 200 'runward_check_runs_total{check="hanging"} [1-9]' 30
            wait_for "http://127.0.0.1:$port/readyz" 503
        fi
    fi
}

# Runs wrk: URL, seconds, threads, connections; prints the RESULT line.
load() {
    wrk -t"$3" -c"$4" -d"${2}s" --timeout 10s -s "$HERE/report.lua" "$1" | grep '^RESULT'
}

# CPU time (user + system) a process has used so far, in clock ticks.
cputicks() {
    local stat
    stat="$(<"/proc/$1/stat")"
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    echo $(( ${12} + ${13} ))
}
CLK_TCK="$(getconf CLK_TCK)"
# CPU time the whole machine has been busy so far, in clock ticks (all cores).
busyticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# Stores in variable $1 the CPU time used so far by this shell's finished children (wrk), in
# clock ticks. `times` must run in this shell, not in a command substitution.
childticks() {
    times >"$WORK/times.txt"
    printf -v "$1" '%s' "$(awk -v hz="$CLK_TCK" 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%d", t * hz
    }' "$WORK/times.txt")"
}
cpu_pct() { awk -v t="$1" -v hz="$CLK_TCK" -v s="$2" 'BEGIN { printf "%.0f", t / hz / s * 100 }'; }

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }

# Measures one load on the running server: name, threads, connections. Records the figures
# under "$scenario/$name/$server".
measure() {
    local name="$1" threads="$2" connections="$3" key="$scenario/$1/$server#$4" url line s0 d0 b0 w0 started elapsed
    url="http://127.0.0.1:${PORT[$server]}/readyz"
    [[ "$server" == floor ]] && url="http://127.0.0.1:$FAST_PORT/ok"
    load "$url" "$WARMUP" "$threads" "$connections" >/dev/null
    s0="$(cputicks "$SERVER_PID")"
    d0="$(cputicks "$DEPS_PID")"
    b0="$(busyticks)"
    childticks w0
    started="$(date +%s.%N)"
    line="$(load "$url" "$DURATION" "$threads" "$connections")"
    elapsed="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
    local server_t=$(( $(cputicks "$SERVER_PID") - s0 )) deps_t=$(( $(cputicks "$DEPS_PID") - d0 ))
    local w1 wrk_t busy_t
    childticks w1
    wrk_t=$(( w1 - w0 ))
    busy_t=$(( $(busyticks) - b0 ))
    local other_t=$(( busy_t - server_t - deps_t - wrk_t ))
    (( other_t > 0 )) || other_t=0
    CPU[$key]="$(cpu_pct "$server_t" "$elapsed")"
    DEPS_CPU[$key]="$(cpu_pct "$deps_t" "$elapsed")"
    WRK_CPU[$key]="$(cpu_pct "$wrk_t" "$elapsed")"
    OTHER_CPU[$key]="$(cpu_pct "$other_t" "$elapsed")"
    RPS[$key]="$(field "$line" rps)"
    P50[$key]="$(field "$line" p50_us)"
    P99[$key]="$(field "$line" p99_us)"
    ERRORS[$key]="$(field "$line" errors)"
    NON2XX[$key]="$(field "$line" non2xx)"
    say "$server, $name, round $4 (wrk -t$threads -c$connections): $line"
}

# Keeps, under "$scenario/$name/$server", the round with the median requests per second
# (of $ROUNDS rounds, or of the one round given as $2).
keep_median() {
    local key="$1" rounds="${2:-$ROUNDS}" round best
    best="$(for round in $(seq "$rounds"); do echo "${RPS[$key#$round]} $round"; done \
        | sort -g | awk -v n="$rounds" 'NR == int((n + 1) / 2) { print $2 }')"
    RPS[$key]="${RPS[$key#$best]}"
    P50[$key]="${P50[$key#$best]}"
    P99[$key]="${P99[$key#$best]}"
    ERRORS[$key]="${ERRORS[$key#$best]}"
    NON2XX[$key]="${NON2XX[$key#$best]}"
    CPU[$key]="${CPU[$key#$best]}"
    DEPS_CPU[$key]="${DEPS_CPU[$key#$best]}"
    WRK_CPU[$key]="${WRK_CPU[$key#$best]}"
    OTHER_CPU[$key]="${OTHER_CPU[$key#$best]}"
}

table() {
    local scenario="$1" name="$2" title="$3" server key base floor r1 r2 r3
    say ""
    say "== /readyz, 20 checks, scenario $scenario, $title"
    say "$(printf '%-20s %10s %9s %9s %8s %6s %5s %5s %5s %5s %9s %14s %14s' server rps p50_ms p99_ms non2xx errors \
        cpu% deps% wrk% other% 'rps/floor' 'rps runward/x' 'p99 x/runward')"
    base="$scenario/$name/runward"
    floor="$scenario/$name/axum-floor"
    for server in $SERVERS; do
        key="$scenario/$name/$server"
        r1="-"
        r2="-"
        r3="-"
        if [[ -n "${RPS[$floor]:-}" ]]; then
            r3="$(awk -v a="${RPS[$key]}" -v b="${RPS[$floor]}" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }')"
        fi
        if [[ -n "${RPS[$base]:-}" && "$server" != runward* && "$server" != *floor ]]; then
            r1="$(ratio "${RPS[$base]}" "${RPS[$key]}")"
            r2="$(ratio "${P99[$key]}" "${P99[$base]}")"
        fi
        say "$(printf '%-20s %10s %9s %9s %8s %6s %5s %5s %5s %5s %9s %14s %14s' "$server" "${RPS[$key]}" \
            "$(ms "${P50[$key]}")" "$(ms "${P99[$key]}")" "${NON2XX[$key]}" "${ERRORS[$key]}" "${CPU[$key]}" \
            "${DEPS_CPU[$key]}" "${WRK_CPU[$key]}" "${OTHER_CPU[$key]}" "$r3" "$r1" "$r2")"
    done
}

main() {
    install
    for p in "$HANG_PORT" "${PORT[@]}"; do
        port_free "$p" || die "port $p on 127.0.0.1 is in use: stop what listens there"
    done
    say "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
        "$(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    say "runward $("$RUNWARD" --version 2>/dev/null | head -n1 || true), node $(node --version)," \
        "$("$HERE/.venv/bin/python" --version 2>/dev/null || true), $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2)"
    say "loads: wrk with $LOADS connections (at most $THREADS threads);" \
        "${WARMUP} s warm-up, ${DURATION} s measured, $ROUNDS rounds alternating servers (median kept), GET /readyz"

    start deps node "$HERE/deps/server.js" "$FAST_PORT" "$HANG_PORT" 30
    DEPS_PID=$LAST_PID
    wait_for "http://127.0.0.1:$FAST_PORT/ok" 200

    declare -gA RPS P50 P99 NON2XX ERRORS CPU DEPS_CPU WRK_CPU OTHER_CPU PID_OF
    local scenario server port connections round
    for scenario in $SCENARIOS; do
        say ""
        say "== scenario: $scenario"
        # runward and the floor run for the whole scenario; the loads alternate between them,
        # round after round, so that a slow moment of the machine does not land on one server
        # only. The peers are measured one at a time afterwards, each alone on the machine:
        # they keep working through a backlog after wrk stops, which would load the others.
        local fast=() slow=()
        for server in $SERVERS; do
            case "$server" in
                runward* | *floor) fast+=("$server") ;;
                *) slow+=("$server") ;;
            esac
        done
        for server in "${fast[@]}"; do
            port="${PORT[$server]}"
            start_server "$server" "$scenario"
            PID_OF[$server]=$SERVER_PID
            if [[ "$server" == runward && "$scenario" == hanging ]]; then
                say "runward /readyz/hanging before the load (loopback caller, details shown):"
                curl -s "http://127.0.0.1:$port/readyz/hanging" | tee -a "$LOG"
                say ""
            fi
        done
        for connections in $LOADS; do
            for round in $(seq "$ROUNDS"); do
                for server in "${fast[@]}"; do
                    SERVER_PID=${PID_OF[$server]}
                    measure "c$connections" "$(( connections < THREADS ? connections : THREADS ))" "$connections" "$round"
                done
            done
            for server in "${fast[@]}"; do
                keep_median "$scenario/c$connections/$server"
            done
        done
        for server in "${fast[@]}"; do
            if [[ "$server" == runward && "$scenario" == hanging ]]; then
                say "runward checks after the load (the hanging one timed out in the background):"
                curl -s "http://127.0.0.1:${PORT[$server]}/metrics" \
                    | grep -E '^runward_check_(runs_total|duration_seconds|up)\{check="(dep01|hanging)"' \
                    | tee -a "$LOG" || true
            fi
            [[ "$server" == floor ]] || stop "${PID_OF[$server]}"
        done
        for server in "${slow[@]}"; do
            start_server "$server" "$scenario"
            for connections in $LOADS; do
                measure "c$connections" "$(( connections < THREADS ? connections : THREADS ))" "$connections" 1
                keep_median "$scenario/c$connections/$server" 1
            done
            stop "$SERVER_PID"
        done
    done
    stop "$DEPS_PID"

    for scenario in $SCENARIOS; do
        for connections in $LOADS; do
            table "$scenario" "c$connections" "$connections connection(s)"
        done
    done
    local name h g f
    say ""
    for scenario in $SCENARIOS; do
        for connections in $LOADS; do
            name="c$connections"
            f="$scenario/$name/axum-floor"
            [[ -n "${RPS[$f]:-}" ]] || continue
            for server in runward runward-status-only; do
                h="$scenario/$name/$server"
                [[ -n "${RPS[$h]:-}" ]] || continue
                say "$server against the floor, $scenario, $connections connection(s):" \
                    "$(awk -v a="${RPS[$h]}" -v b="${RPS[$f]}" 'BEGIN { printf "%.0f%%", 100 * a / b }') of its rps" \
                    "(target at least 90%), p99 $(ms "${P99[$h]}") ms against $(ms "${P99[$f]}") ms"
            done
        done
    done
    if [[ " $SCENARIOS " == *" healthy "* && " $SCENARIOS " == *" hanging "* ]]; then
        say ""
        for connections in $LOADS; do
            name="c$connections"
            h="healthy/$name/runward"
            g="hanging/$name/runward"
            [[ -n "${RPS[$h]:-}" && -n "${RPS[$g]:-}" ]] || continue
            say "runward, hanging vs healthy, $connections connection(s): rps ${RPS[$h]} -> ${RPS[$g]}," \
                "p50 $(ms "${P50[$h]}") -> $(ms "${P50[$g]}") ms, p99 $(ms "${P99[$h]}") -> $(ms "${P99[$g]}") ms"
        done
    fi
    say ""
    say "axum-floor: a bare axum server answering the status-only bytes, what this machine gives a do-nothing"
    say "Rust server (rps/floor is each server's share of it); floor: the dependency server's own 200 ok (Node)."
    say "rps: requests per second; p50/p99: wrk latency percentiles; non2xx: answers other than 2xx/3xx"
    say "(a failing readiness probe answers 503). CPU over the measured window, 200% = both cores: cpu% the"
    say "server, deps% the dependency server, wrk% the load generator, other% every other process on the"
    say "machine (anything above a few % means the figures were taken on a busy machine). Ratios against runward."
    say "saved to ${LOG#"$ROOT"/}"
}

main "$@"
