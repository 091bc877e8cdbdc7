#!/usr/bin/env bash
# How many instructions does `mailfuse scan` spend per log line, next to
# `grep -c` on the same lines, and where do they go?
#
# Usage: bench/instructions.sh
#   FORMAT=postfix bench/instructions.sh   the Postfix bench log (default kerio)
#   LINES_READ=500000 bench/instructions.sh   lines counted from the log's start
#   SIZE=…, REGEN=1                         as for bench/scan.sh (the log generated)
#
# Wall times on a VM with busy neighbours move by a quarter within an hour
# (see the README's Performance section); instructions do not. Valgrind's
# cachegrind counts every instruction each tool runs (both of mailfuse's
# threads, run one at a time under valgrind) on the first LINES_READ lines of
# the bench log, and the functions mailfuse spends them in are listed. The
# same binary on the same lines gives the same count to within a few in ten
# thousand, so two builds compare at a glance. Instructions are not time: a
# line whose state is not in the CPU's caches waits without counting any;
# bench/scan.sh measures the time. Nothing here asserts a figure.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NAME=bench/instructions.sh
FORMAT="${FORMAT:-kerio}"
LINES_READ="${LINES_READ:-500000}"
case "$FORMAT" in
    kerio) DATA=bench/data/kerio-mail.log PATTERN='Recv:' ;;
    postfix) DATA=bench/data/postfix-mail.log PATTERN='status=' ;;
    *) printf '%s: error: FORMAT must be kerio or postfix, got %s\n' "$BENCH_NAME" "$FORMAT" >&2; exit 2 ;;
esac
[[ "$LINES_READ" =~ ^[1-9][0-9]*$ ]] || { printf '%s: error: LINES_READ must be a positive number, got %s\n' "$BENCH_NAME" "$LINES_READ" >&2; exit 2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_package valgrind /usr/bin/valgrind "valgrind to count instructions"
build_release
ensure_log "$FORMAT"

# The first lines, as a file of their own: its modification time is the
# log's, from which a Postfix log's year is taken.
SAMPLE="$TMP/sample.log"
head -n "$LINES_READ" "$DATA" >"$SAMPLE"
touch -r "$DATA" "$SAMPLE"
SAMPLE_LINES=$(wc -l <"$SAMPLE")
SAMPLE_BYTES=$(stat -c %s "$SAMPLE")

# Runs "$2…" under cachegrind, its output to a file (GNU grep stops at the
# first match when its output is /dev/null), and prints the instructions it
# ran; the counts by function go to $TMP/$1.out. Exit status 1 is mailfuse's
# "incidents found" and grep's "none matched": both ran through.
count_instructions() {
    local name="$1" rc=0
    shift
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$TMP/$name.out" \
        "$@" >"$TMP/$name.stdout" 2>"$TMP/$name.err" || rc=$?
    if ((rc > 1)); then
        cat "$TMP/$name.err" >&2
        die "'$*' failed under valgrind with exit status $rc"
    fi
    awk '/I[[:space:]]+refs:/ { gsub(",", "", $NF); print $NF }' "$TMP/$name.err"
}

say "counting instructions on the first $SAMPLE_LINES lines of $DATA (valgrind: a minute or two)"
GREP_IR=$(count_instructions grep grep -c "$PATTERN" "$SAMPLE")
MAILFUSE_IR=$(count_instructions mailfuse "$MAILFUSE" scan --format json --no-progress "$SAMPLE")
[[ -n "$GREP_IR" && -n "$MAILFUSE_IR" ]] || die "valgrind printed no instruction count (see its output above)"

printf '\n%s, first %d lines (%d bytes)\n\n' "$DATA" "$SAMPLE_LINES" "$SAMPLE_BYTES"
awk -v lines="$SAMPLE_LINES" -v bytes="$SAMPLE_BYTES" -v grep="$GREP_IR" -v mf="$MAILFUSE_IR" -v pattern="$PATTERN" '
    function row(name, ir) {
        printf "%-32s %15.0f %10.0f %9.1f %12.1f\n", name, ir, ir / lines, ir / bytes, ir / grep
    }
    BEGIN {
        printf "%-32s %15s %10s %9s %12s\n", "tool", "instructions", "per line", "per byte", "x grep -c"
        row("grep -c " pattern, grep)
        row("mailfuse scan --format json", mf)
    }'

printf '\nmailfuse, instructions by function (the first 15):\n\n'
# cg_annotate lists instructions by file and function, one row per source
# file a function's inlined code came from: summed here by function.
cg_annotate "$TMP/mailfuse.out" 2>/dev/null | awk -v total="$MAILFUSE_IR" '
    /file:function/ { listing = 1; next }
    listing && /^-+$/ && seen { exit }
    listing && /^ *[0-9,]+ \(/ {
        seen = 1
        count = $1; gsub(",", "", count)
        name = $0; sub(/^[^)]*\)[[:space:]]+/, "", name); sub(/^[^:]*:/, "", name)
        sum[name] += count
    }
    END { for (name in sum) printf "%6.2f %%  %s\n", 100 * sum[name] / total, name }' |
    sort -rn | head -n 15
