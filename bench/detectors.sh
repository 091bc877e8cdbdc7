#!/usr/bin/env bash
# How long do the detectors take on their own, and how much of a two-core
# scan is their time?
#
# Usage: bench/detectors.sh
#   FORMAT=postfix bench/detectors.sh   the Postfix bench log (default kerio)
#   RUNS=…, SIZE=…, REGEN=1             as for bench/scan.sh
#
# The example program crates/mailfuse/examples/detectors.rs parses the bench
# log into memory once, then feeds the same events to fresh detectors RUNS
# times on one core (`taskset -c 0`): no reading, no second thread, no lines
# handed between cores. Then `mailfuse scan` reads the same log on every
# core, RUNS times, and the best times are compared. A scan whose time is
# about the detectors' alone (a Kerio log) is as fast as its detectors: only
# fewer instructions or fewer cache misses in them make it faster. The
# numbers are for humans, nothing here asserts a timing.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NAME=bench/detectors.sh
FORMAT="${FORMAT:-kerio}"
case "$FORMAT" in
    kerio) DATA=bench/data/kerio-mail.log ;;
    postfix) DATA=bench/data/postfix-mail.log ;;
    *) printf '%s: error: FORMAT must be kerio or postfix, got %s\n' "$BENCH_NAME" "$FORMAT" >&2; exit 2 ;;
esac
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_gnu_time
build_release
say "building the detectors' example"
cargo build --release -p mailfuse --example detectors
DETECTORS="${CARGO_TARGET_DIR:-target}/release/examples/detectors"
ensure_log "$FORMAT"
warm_cache

say "the detectors alone on one core, $RUNS rounds"
taskset -c 0 "$DETECTORS" "$DATA" "$RUNS" | tee "$TMP/detectors.txt"
DETECTORS_S=$(awk '/^best:/ { print $2 }' "$TMP/detectors.txt")

say "mailfuse scan on every core, best of $RUNS"
time_in_turns MAILFUSE_NS=run_mailfuse

print_file_line
awk -v alone="$DETECTORS_S" -v scan="$MAILFUSE_NS" -v cores="$(nproc)" 'BEGIN {
    printf "%-44s %8.3f s\n", "detectors alone, one core (best)", alone
    printf "%-44s %8.3f s\n", "mailfuse scan --format json, " cores " cores (best)", scan / 1e9
    printf "\nscan / detectors alone: %.2f\n", scan / 1e9 / alone
}'
print_round_trips
