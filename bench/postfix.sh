#!/usr/bin/env bash
# How fast does `mailfuse scan` read a big Postfix + Dovecot mail.log,
# compared with the floor of any line-oriented tool (`wc -l`, `grep -c`) and
# with pflogsumm, the classic Postfix log summariser, on the same file in the
# same run? And how much memory does mailfuse need?
#
# Usage: bench/postfix.sh
#   SIZE=2G bench/postfix.sh    size of the generated log (default 500M; K/M/G are binary)
#   REGEN=1 bench/postfix.sh    regenerate the log even if one of the right size exists
#
# The log is generated once into bench/data/ (git-ignored) by
# `mailfuse-loggen bench --format postfix` and reused; its stamps have no year
# (RFC 3164): the generator sets the file's modification time to its last
# line, mailfuse takes the year from it, pflogsumm from the clock (both get
# November 2026 for the default size). Nothing is dropped from the page cache
# (that needs root): one read warms the cache, then every tool runs 3 times
# and the best time counts, so all tools are measured reading from memory.
# Run on an otherwise idle machine; the numbers are for humans, nothing here
# asserts a timing.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NAME=bench/postfix.sh
DATA=bench/data/postfix-mail.log
# mailfuse may not read Postfix logs yet: its row then says so.
MAILFUSE_MAY_FAIL=1
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_gnu_time
ensure_package pflogsumm /usr/sbin/pflogsumm "pflogsumm to compare with"
build_release
ensure_log postfix
warm_cache

run_grep() { grep -c 'status=' "$DATA" >"$TMP/count"; }
run_pflogsumm() { /usr/sbin/pflogsumm "$DATA" >"$TMP/pflogsumm.txt" 2>"$TMP/pflogsumm.err"; }

say "timing, best of $RUNS runs each (pflogsumm, which takes a while, of 3 at most)"
time_wc_grep_mailfuse
RUNS=$((RUNS < 3 ? RUNS : 3)) best_of run_pflogsumm
pflogsumm_ns=$BEST_NS

print_file_line
awk -v bytes="$BYTES" -v wc="$WC_NS" -v grep="$GREP_NS" -v pf="$pflogsumm_ns" -v mf="$MAILFUSE_NS" \
    -v rss="$PEAK_KB" -v failed="$MAILFUSE_FAILED" '
    function row(name, ns) {
        printf "%-32s %9.3f %10.0f %10.1f %14.1f\n", name, ns / 1e9, bytes / 1e6 / (ns / 1e9), ns / wc, pf / ns
    }
    BEGIN {
        printf "%-32s %9s %10s %10s %14s\n", "tool", "seconds", "MB/s", "vs wc -l", "x pflogsumm"
        row("wc -l", wc)
        row("grep -c status=", grep)
        row("pflogsumm", pf)
        if (failed == "") {
            row("mailfuse scan --format json", mf)
            printf "\nmailfuse peak RSS: %.1f MiB\n", rss / 1024
        } else {
            printf "%-32s did not read the file (%s)\n", "mailfuse scan --format json", failed
        }
        print "\nvs wc -l: times as long as wc -l; x pflogsumm: times as fast as pflogsumm."
    }'
print_round_trips
printf '\npflogsumm Grand Totals:\n'
sed -n '/^Grand Totals/,/^Per-Day/p' "$TMP/pflogsumm.txt" | sed -e '1,3d' -e '/^Per-Day/d' -e '/^$/d' -e 's/^/  /'
