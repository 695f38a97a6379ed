#!/bin/sh
# table.sh: run rategov_scenario for every client × scenario × server enforcement and
# print a Markdown table of the results.
#
# usage: bench/scenario/table.sh RESULTS.jsonl [rategov_scenario options...]
#   e.g. bench/scenario/table.sh results.jsonl --duration 600 --seed 1
#
# Every run's JSON line goes to RESULTS.jsonl (overwritten); the table goes to stdout and
# progress to stderr. Extra options are passed to every run, before the grid's own
# --client / --scenario / --server-enforcement (which therefore always win).
# The binary is $RATEGOV_SCENARIO, or build/dev/bench/scenario/rategov_scenario under the
# repository root (build it with: cmake --preset dev && cmake --build --preset dev
# --target rategov_scenario).
#
# Columns: shares of all requests answered 429 / 503 (percent); the binding metric's
# utilization (what the provider counted / its average limit); useful tokens per second
# (prompt + generated of the calls that succeeded); the wait from a call to its send
# (p50, p99, ms; calls that succeeded, issued after the warm-up); calls failed (gave up:
# deadline, attempts or budget); the priority scenario's p99 waits of priority / regular calls (ms); the
# halve / double scenarios' adaptation time (s; "never (N)" when it did not happen before
# the end of the run, which then reports the whole second half N).
set -eu

CLIENTS="rategov rategov-blind naive-backoff fixed-window pause-on-429"
SCENARIOS="steady halve double priority shed"
ENFORCEMENTS="window bucket"

prog=$(basename -- "$0")
if [ "$#" -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    [ "$#" -ge 1 ] && exit 0
    exit 2
fi
out=$1
shift
case $out in
    -*) echo "$prog: the first argument is the results file, got '$out'" >&2; exit 2 ;;
esac

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH='' cd -- "$here/../.." && pwd)
bin=${RATEGOV_SCENARIO:-$root/build/dev/bench/scenario/rategov_scenario}
if [ ! -x "$bin" ]; then
    echo "$prog: no executable rategov_scenario at '$bin'" >&2
    echo "  build it: cd '$root' && cmake --preset dev && cmake --build --preset dev --target rategov_scenario" >&2
    echo "  or set RATEGOV_SCENARIO to its path" >&2
    exit 1
fi

: >"$out"
total=0
for s in $SCENARIOS; do for e in $ENFORCEMENTS; do for c in $CLIENTS; do
    total=$((total + 1))
done; done; done

n=0
failed=0
for s in $SCENARIOS; do
    for e in $ENFORCEMENTS; do
        for c in $CLIENTS; do
            n=$((n + 1))
            printf '[%d/%d] %s %s %s\n' "$n" "$total" "$s" "$e" "$c" >&2
            if ! "$bin" "$@" --client "$c" --scenario "$s" --server-enforcement "$e" >>"$out"; then
                echo "$prog: run failed: --client $c --scenario $s --server-enforcement $e" >&2
                failed=$((failed + 1))
            fi
        done
    done
done

# The table, from the JSON lines (flat keys, except "metrics", whose nested objects we
# never need: every key read below is matched with its value, never a '{').
awk '
function val(key,    r, v) {
    # "key": value  with value a number, null or a string
    if (!match($0, "\"" key "\": (\"[^\"]*\"|null|true|false|-?[0-9][0-9.eE+-]*)"))
        return ""
    v = substr($0, RSTART, RLENGTH)
    sub("^\"" key "\": ", "", v)
    gsub("\"", "", v)
    return v
}
function num(v, fmt) { return (v == "" || v == "null") ? "–" : sprintf(fmt, v) }
function pct(v) { return (v == "" || v == "null") ? "–" : sprintf("%.2f%%", v * 100) }
BEGIN {
    print "| scenario | enforcement | client | requests | calls failed | share_429 | share_503 | binding util | useful tok/s | wait p50 ms | wait p99 ms | priority/regular p99 ms | adaptation s |"
    print "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
}
/^\{/ {
    s = val("scenario")
    prio = "–"
    if (s == "priority")
        prio = num(val("priority_wait_p99_ms"), "%.0f") " / " num(val("regular_wait_p99_ms"), "%.0f")
    adapt = "–"
    if (s == "halve" || s == "double") {
        a = val("adaptation_s")
        adapt = num(a, "%.0f")
        # not adapted before the end of the run: the benchmark reports the time left
        if (val("adapted") == "false")
            adapt = "never (" adapt ")"
    }
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
        s, val("enforcement"), val("client"), num(val("requests"), "%.0f"),
        num(val("calls_failed"), "%.0f"),
        pct(val("share_429")), pct(val("share_503")),
        num(val("binding_utilization"), "%.3f"), num(val("useful_tokens_per_s"), "%.0f"),
        num(val("wait_p50_ms"), "%.0f"), num(val("wait_p99_ms"), "%.0f"), prio, adapt
}
' "$out"

if [ "$failed" -gt 0 ]; then
    echo "$prog: $failed of $total runs failed" >&2
    exit 1
fi
