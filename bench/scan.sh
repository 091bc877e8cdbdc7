#!/usr/bin/env bash
# How fast does `mailfuse scan` read a big Kerio mail.log, compared with the
# floor of any line-oriented tool (`wc -l`, `grep -c`), and how much memory
# does it need?
#
# Usage: bench/scan.sh
#   SIZE=2G bench/scan.sh    size of the generated log (default 500M; K/M/G are binary)
#   REGEN=1 bench/scan.sh    regenerate the log even if one of the right size exists
#
# The log is generated once into bench/data/ (git-ignored) by mailfuse-loggen
# and reused. Nothing is dropped from the page cache (that needs root): one
# read warms the cache, then every tool runs 3 times and the best time counts,
# so all tools are measured reading from memory. Run on an otherwise idle
# machine; the numbers are for humans, nothing here asserts a timing.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NAME=bench/scan.sh
DATA=bench/data/kerio-mail.log
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_gnu_time
build_release
ensure_log kerio
warm_cache

run_grep() { grep -c 'Recv:' "$DATA" >"$TMP/count"; }

say "timing, best of $RUNS runs each"
time_wc_grep_mailfuse

print_file_line
awk -v bytes="$BYTES" -v wc="$WC_NS" -v grep="$GREP_NS" -v mf="$MAILFUSE_NS" -v rss="$PEAK_KB" '
    function row(name, ns) {
        printf "%-32s %9.3f %10.0f %12.1f\n", name, ns / 1e9, bytes / 1e6 / (ns / 1e9), ns / wc
    }
    BEGIN {
        printf "%-32s %9s %10s %12s\n", "tool", "seconds", "MB/s", "vs wc -l"
        row("wc -l", wc)
        row("grep -c Recv:", grep)
        row("mailfuse scan --format json", mf)
        printf "\nmailfuse peak RSS: %.1f MiB\n", rss / 1024
    }'
print_round_trips
