#!/usr/bin/env bash
# mailfuse at a hosting provider's scale: `scan` on logs with hundreds of
# thousands of mailboxes and millions of attacker IPs, next to `wc -l` and
# `grep -c` on the same files, and watch's saved state on the biggest.
#
# Usage: bench/scale.sh
#   REGEN=1 bench/scale.sh     regenerate the logs even if they exist
#   RUNS=1 bench/scale.sh      runs per tool, the best counting (default 3)
#   WATCH=0 bench/scale.sh     leave out watch's figures (they take minutes)
#
# The logs (written once into bench/data/, git-ignored, by
# `mailfuse-loggen provider`):
#   provider-334k.log   334,000 mailboxes, no attackers
#   provider-900k.log   900,000 attacker IPs (and 1,000 mailboxes)
#   provider-1m-2m.log  1,000,000 mailboxes and 2,000,000 attacker IPs
# Per file: size, lines, the best times of `wc -l`, `grep -c status=` and
# `mailfuse scan --format json`, throughput and ratios, peak memory (GNU
# time), and memory per mailbox and per attacker IP. Then, on the biggest,
# watch's first save, live saves, state on disk and restore time
# (bench/watch-state.sh). Nothing is dropped from the page cache; the
# numbers are for humans, nothing here asserts a timing.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NAME=bench/scale.sh
# Its logs take a minute a scan: fewer turns than the other benchmarks.
RUNS="${RUNS:-3}"
# shellcheck source=bench/lib.sh
source bench/lib.sh
# shellcheck source=bench/watch-state.sh
source bench/watch-state.sh

ensure_gnu_time
build_release

# name accounts attacker_ips
LOGS=(
    "provider-334k 334000 0"
    "provider-900k 1000 900000"
    "provider-1m-2m 1000000 2000000"
)

# Writes bench/data/$1.log with $2 mailboxes and $3 attacker IPs unless it is there.
ensure_provider_log() {
    local name="$1" accounts="$2" ips="$3"
    DATA="bench/data/$name.log"
    if [[ "$REGEN" != 1 && -s "$DATA" ]]; then
        say "reusing $DATA"
    else
        say "generating $DATA ($accounts mailboxes, $ips attacker IPs)"
        mkdir -p bench/data
        "$LOGGEN" provider --accounts "$accounts" --attacker-ips "$ips" --out "$DATA.tmp"
        mv "$DATA.tmp" "$DATA"
    fi
    BYTES=$(stat -c %s "$DATA")
}

run_grep() { grep -c 'status=' "$DATA" >"$TMP/count"; }

printf '%-16s %8s %10s %7s %7s %8s %9s %8s %8s %9s %9s\n' \
    log MB lines "wc s" "grep s" "scan s" "scan MB/s" "vs grep" "peak MB" "B/mailbox" "B/IP"
for entry in "${LOGS[@]}"; do
    read -r name accounts ips <<<"$entry"
    ensure_provider_log "$name" "$accounts" "$ips"
    warm_cache
    PEAK_KB=0
    time_wc_grep_mailfuse
    awk -v name="$name" -v bytes="$BYTES" -v lines="$LINES" -v wc="$WC_NS" -v grep="$GREP_NS" \
        -v mf="$MAILFUSE_NS" -v rss="$PEAK_KB" -v accounts="$accounts" -v ips="$ips" '
        BEGIN {
            per_account = accounts >= 100000 ? sprintf("%.0f", rss * 1024 / accounts) : "-"
            per_ip = ips > 0 ? sprintf("%.0f", rss * 1024 / ips) : "-"
            printf "%-16s %8.0f %10d %7.2f %7.2f %8.2f %9.0f %8.2f %8.0f %9s %9s\n",
                name, bytes / 1e6, lines, wc / 1e9, grep / 1e9, mf / 1e9,
                bytes / 1e6 / (mf / 1e9), grep / mf, rss / 1024, per_account, per_ip
        }'
done
printf '\n("vs grep" is grep -c time / scan time: 1.0 is as fast as grep; B/mailbox and B/IP\n are the peak memory divided by the mailboxes or the attacker IPs of the log.)\n'

if [[ "${WATCH:-1}" != 0 ]]; then
    say "watch on bench/data/provider-1m-2m.log (1% written live)"
    measure_watch_state bench/data/provider-1m-2m.log 1
fi
