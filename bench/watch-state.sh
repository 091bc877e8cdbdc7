#!/usr/bin/env bash
# What watch's saved state costs on a big log: the first save (every entry
# once), the saves of live traffic afterwards (only what changed), the
# state's size on disk, and how long a restart takes to restore it.
#
# Usage: bench/watch-state.sh LOG [LIVE_PERCENT]
#   LOG            a mail log (e.g. one bench/scale.sh generated)
#   LIVE_PERCENT   the share of LOG's lines written live, one slice a second
#                  after watch caught up with the rest (default 1)
#
# watch follows a copy of LOG's first lines in a temporary directory with
# `save_every_secs = 1`, then the rest is appended slice by slice as a live
# server would write it; save times come from watch's own debug log
# (`saved seconds=… rows=…`). The numbers are for humans: nothing asserts
# a timing. Sourced by bench/scale.sh too (it calls measure_watch_state).
set -euo pipefail

# Waits until file $2, where process $3 logs, holds a line matching $1; if
# the process ends first, shows its log and stops with message $4.
wait_for_line() {
    until grep -q "$1" "$2"; do
        kill -0 "$3" 2>/dev/null || { cat "$2" >&2; die "$4"; }
        sleep 0.2
    done
}

# Prints the watch figures for log $1 with $2 % of it written live.
measure_watch_state() {
    local log="$1" live_percent="${2:-1}" dir lines live_lines first_lines pid slices
    dir=$(mktemp -d)
    lines=$(wc -l <"$log")
    live_lines=$((lines * live_percent / 100))
    first_lines=$((lines - live_lines))
    head -n "$first_lines" "$log" >"$dir/mail.log"
    cat >"$dir/mailfuse.toml" <<EOF
[watch]
logs = ["$dir/mail.log"]
state = "$dir/state.db"
dry_run = true
save_every_secs = 1
EOF
    RUST_LOG=mailfuse=debug "$MAILFUSE" watch -c "$dir/mailfuse.toml" 2>"$dir/watch.err" &
    pid=$!
    # Caught up: the first save after reading the whole copy.
    wait_for_line 'saved seconds' "$dir/watch.err" "$pid" "watch stopped"
    # The live part, in 20 slices a second apart.
    slices=20
    tail -n "+$((first_lines + 1))" "$log" >"$dir/live.log"
    split -n "l/$slices" "$dir/live.log" "$dir/slice."
    for slice in "$dir"/slice.*; do
        cat "$slice" >>"$dir/mail.log"
        sleep 1
    done
    sleep 2
    kill -TERM "$pid"
    wait "$pid" || true
    local state_bytes restore
    state_bytes=$(du -cb "$dir"/state.db* | awk 'END { print $1 }')
    # Restart: time from start to the restored state.
    RUST_LOG=mailfuse=info "$MAILFUSE" watch -c "$dir/mailfuse.toml" 2>"$dir/restart.err" &
    pid=$!
    wait_for_line 'resuming from saved state' "$dir/restart.err" "$pid" "watch did not restart"
    kill -TERM "$pid"
    wait "$pid" || true
    restore=$(grep -o 'resuming from saved state.*' "$dir/restart.err" | grep -o 'seconds=[0-9.]*' | cut -d= -f2)
    awk -v state="$state_bytes" -v restore="$restore" -v live="$live_lines" '
        /saved seconds=/ {
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^seconds=/) { s = substr($i, 9) }
                if ($i ~ /^rows=/) { r = substr($i, 6) }
            }
            n++
            if (n == 1) { first_s = s; first_r = r; next }
            if (r == 0) { next }
            live_n++; live_rows += r; total += s
            if (s > max) { max = s }
        }
        END {
            printf "watch: first save %.2f s (%d rows)\n", first_s, first_r
            if (live_n > 0) {
                printf "watch: %d live saves of %d lines: mean %.1f ms, max %.1f ms, %.0f rows each\n", live_n, live, total / live_n * 1000, max * 1000, live_rows / live_n
            }
            printf "watch: state on disk %.1f MB; restart restores it in %.2f s\n", state / 1e6, restore
        }' "$dir/watch.err"
    rm -rf "$dir"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    cd "$(dirname "$0")/.."
    BENCH_NAME=bench/watch-state.sh
    # shellcheck source=bench/lib.sh
    source bench/lib.sh
    [[ $# -ge 1 && -f "$1" ]] || die "usage: $BENCH_NAME LOG [LIVE_PERCENT]"
    build_release
    measure_watch_state "$1" "${2:-1}"
fi
