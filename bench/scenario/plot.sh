#!/bin/sh
# plot.sh: two rategov_scenario runs side by side, from their --csv time series.
#
# usage: bench/scenario/plot.sh OUT.png CSV_A LABEL_A CSV_B LABEL_B [METRIC]
#   METRIC: requests | total_prompt | uncached_prompt | generated (default generated)
#   e.g. rategov_scenario --client rategov --scenario halve --csv a.csv
#        rategov_scenario --client naive-backoff --scenario halve --csv b.csv
#        bench/scenario/plot.sh halve.png a.csv rategov b.csv naive-backoff
#
# One panel per run: the server's limit of METRIC (a step line), what the provider counted
# each second (scaled to per minute, as the limit: points), its trailing 10 s moving
# average, and the 429s (and the 503s, when there are any) per second as impulses on the
# right axis. Both panels share their scales. Needs gnuplot (Debian: gnuplot-nox); writes
# a 1400x500 PNG (pngcairo, or the png terminal without cairo).
set -eu

prog=$(basename -- "$0")
usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit "$1"
}
case ${1-} in -h | --help) usage 0 ;; esac
if [ "$#" -lt 5 ] || [ "$#" -gt 6 ]; then
    usage 2
fi
out=$1 csv_a=$2 label_a=$3 csv_b=$4 label_b=$5 metric=${6:-generated}

case $metric in
    requests | total_prompt | uncached_prompt | generated) ;;
    *)
        echo "$prog: unknown metric '$metric' (requests, total_prompt, uncached_prompt, generated)" >&2
        exit 2
        ;;
esac
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "$prog: gnuplot not found; install the Debian package gnuplot-nox" >&2
    echo "  (e.g. sudo apt-get install gnuplot-nox)" >&2
    exit 1
fi
for f in "$csv_a" "$csv_b"; do
    if [ ! -r "$f" ]; then
        echo "$prog: cannot read '$f'" >&2
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plot.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each CSV into t, limit, used, moving average of used, 429s, 503s (whitespace separated),
# found by the header's names so that added columns do not matter.
extract() { # CSV OUT
    awk -F, -v m="$metric" -v name="$1" '
    NR == 1 {
        for (i = 1; i <= NF; i++) col[$i] = i
        if (!("t" in col) || !((m "_limit") in col) || !((m "_used") in col) || !("over_limit" in col)) {
            printf "plot.sh: %s: not a rategov_scenario --csv file (no t, %s_limit, %s_used, over_limit)\n", name, m, m > "/dev/stderr"
            bad = 1
            exit 1
        }
        ct = col["t"]; cl = col[m "_limit"]; cu = col[m "_used"]; co = col["over_limit"]
        cs = ("shed" in col) ? col["shed"] : 0
        next
    }
    NF > 1 {
        u = $cu + 0
        k = n % 10; sum += u - (n >= 10 ? ring[k] : 0); ring[k] = u; n++
        printf "%s %s %s %.3f %s %s\n", $ct, $cl, u, sum / (n < 10 ? n : 10), $co, cs ? $cs : 0
    }
    END { if (!bad && n == 0) { printf "plot.sh: %s: no data rows\n", name > "/dev/stderr"; exit 1 } }
    ' "$1" >"$2"
}
extract "$csv_a" "$tmp/a.dat"
extract "$csv_b" "$tmp/b.dat"

# Shared scales: x to the longer run; y to the highest moving average or limit, with room
# for the key, but at most 3x the highest limit (the per-second points of a bursty client
# can be many times the limit: beyond that they are clipped, and the title says so);
# the impulses in the lower sixth of the right axis.
# shellcheck disable=SC2046 # six numbers, split on purpose
set -- $(awk '
    { if ($1 > t) t = $1; if ($2 > l) l = $2; if ($4 > a) a = $4; if ($3 > u) u = $3
      if ($5 > e) e = $5; if ($6 > e) e = $6; if ($6 > 0) s = 1 }
    END {
        if (l <= 0) l = 1; if (e <= 0) e = 1
        y = (a > l ? a : l) * 1.35; clip = 0
        if (y > 3 * l) { y = 3 * l }
        if (u > y) clip = 1
        # tick labels in thousands or millions
        sc = 1; if (y >= 2e6) sc = 1e6; else if (y >= 2e3) sc = 1e3
        printf "%s %s %s %d %d %s\n", t, y / sc, e * 6, s, clip, sc
    }
' "$tmp/a.dat" "$tmp/b.dat")
xmax=$1 ymax=$2 y2max=$3 has_shed=$4 clipped=$5 scale=$6

cat >"$tmp/plot.gp" <<'EOF'
# ARG1 out, ARG2/ARG3 data and label of A, ARG4/ARG5 of B, ARG6 metric, ARG7 xmax,
# ARG8 ymax (scaled), ARG9 y2max; has_shed, clipped, scale and cairo are set by -e.
if (cairo) {
    set terminal pngcairo size 1400,500 font "Sans,10" noenhanced
} else {
    set terminal png size 1400,500 noenhanced
}
set encoding utf8
set output ARG1
set datafile separator whitespace
set multiplot layout 1,2 title sprintf("%s: server limit vs what the provider counted%s", ARG6, \
    clipped ? "  (y axis cut at 3x the limit: higher points not shown)" : "") font ",11"
set xrange [0:ARG7+0]
set yrange [0:ARG8+0]
set y2range [0:ARG9+0]
set xlabel "virtual time (s)"
unit = scale == 1e6 ? " (millions)" : scale == 1e3 ? " (thousands)" : ""
set ylabel sprintf("%s tokens per minute%s", ARG6, unit)
if (ARG6 eq "requests") set ylabel sprintf("requests per minute%s", unit)
set y2label (has_shed ? "429s and 503s per second" : "429s per second")
set ytics nomirror
set y2tics nomirror
set grid xtics ytics lc rgb "#dddddd"
set key below horizontal maxrows 1 samplen 1.5 width -1 font ",9"
set bmargin 5.5
set lmargin 10; set rmargin 9
set style line 1 lc rgb "#d62728" lw 2.5               # limit
set style line 2 lc rgb "#6baed6" pt 7 ps 0.3           # used, per second
set style line 3 lc rgb "#08519c" lw 1.8               # moving average
set style line 4 lc rgb "#50ff7f0e" lw 1.5               # 429s
set style line 5 lc rgb "#509467bd" lw 1.5               # 503s

do for [i = 0:1] {
    file = i == 0 ? ARG2 : ARG4
    set title (i == 0 ? ARG3 : ARG5) font ",13"
    # drawn: impulses first (behind), the limit last (on top); listed: the limit first
    plot NaN with lines ls 1 title "limit", \
         NaN with lines ls 3 title "counted, 10 s avg", \
         NaN with points ls 2 title "counted, 1 s (x60)", \
         file using 1:5 axes x1y2 with impulses ls 4 title "429s/s (right)", \
         file using 1:6 axes x1y2 with impulses ls 5 title (has_shed ? "503s/s (right)" : ""), \
         file using 1:($3/scale) with points ls 2 notitle, \
         file using 1:($4/scale) with lines ls 3 notitle, \
         file using 1:($2/scale) with steps ls 1 notitle
}
unset multiplot
EOF

cairo=0
if printf 'set terminal\n' | gnuplot 2>&1 | grep -q pngcairo; then
    cairo=1
fi
gnuplot -e "cairo=$cairo; has_shed=$has_shed; clipped=$clipped; scale=$scale" -c "$tmp/plot.gp" \
    "$out" "$tmp/a.dat" "$label_a" "$tmp/b.dat" "$label_b" "$metric" "$xmax" "$ymax" "$y2max"
echo "$prog: wrote $out" >&2
