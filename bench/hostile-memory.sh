#!/usr/bin/env bash
# Does `mailfuse scan` stay in bounded memory on hostile shapes of input?
# Prints its peak resident memory and time beside the time of `wc -l` on:
#   - 10 million empty lines after a few Kerio lines (plain);
#   - 1 GiB of newlines after a few Kerio lines, gzip-compressed;
#   - long lines: 100 lines of 1 MiB (over the 64 KiB limit, skipped) and
#     1,000 lines of 63 KiB (under it, kept) after a few Kerio lines.
# The Kerio lines come first so the files are recognised and every line is
# parsed and counted (a file that starts with 1,000 unknown lines is judged
# not a log and left unread, which would measure nothing).
#
# Usage: bench/hostile-memory.sh
#   REGEN=1 bench/hostile-memory.sh   regenerate the files
#
# The files are generated once into bench/data/hostile/ (git-ignored). The
# numbers are for humans: nothing here asserts a timing; the target is a
# peak under 100 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NAME=bench/hostile-memory.sh
DIR=bench/data/hostile
# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_gnu_time
say "building the release binary"
cargo build --release -p mailfuse
mkdir -p "$DIR"

HEAD=examples/kerio/mail.log
# Writes file $1 with the command in the rest of the arguments, unless it
# exists (or REGEN=1).
generate() {
    local file="$1"
    shift
    if [[ "$REGEN" != 1 && -s "$file" ]]; then
        say "reusing $file"
        return
    fi
    say "generating $file"
    "$@" >"$file.tmp"
    mv "$file.tmp" "$file"
}
empty_lines() { head -n 100 "$HEAD"; head -c 10000000 /dev/zero | tr '\0' '\n'; }
newlines_gz() { { head -n 100 "$HEAD"; head -c 1G /dev/zero | tr '\0' '\n'; } | gzip -1; }
long_lines() {
    head -n 100 "$HEAD"
    local mib kib63
    mib=$(head -c $((1 << 20)) /dev/zero | tr '\0' 'x')
    kib63=$(head -c $((63 << 10)) /dev/zero | tr '\0' 'y')
    for ((i = 0; i < 100; i++)); do printf '%s\n' "$mib"; done
    for ((i = 0; i < 1000; i++)); do printf '%s\n' "$kib63"; done
}
generate "$DIR/empty-lines.log" empty_lines
generate "$DIR/newlines.log.gz" newlines_gz
generate "$DIR/long-lines.log" long_lines

# Seconds the command in the arguments takes.
seconds() {
    local start
    start=$(date +%s%N)
    "$@" >/dev/null
    awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.2f", ns / 1e9 }'
}

printf '\n%-26s %12s %10s %14s %16s\n' file lines "wc -l s" "mailfuse s" "mailfuse peak"
for file in "$DIR/empty-lines.log" "$DIR/newlines.log.gz" "$DIR/long-lines.log"; do
    if [[ "$file" == *.gz ]]; then
        count() { gzip -dc "$file" | wc -l; }
    else
        count() { wc -l <"$file"; }
    fi
    cat "$file" >/dev/null # warm the page cache
    lines=$(count)
    wc_s=$(seconds count)
    DATA="$file"
    PEAK_KB=0
    start=$(date +%s%N)
    run_mailfuse
    mf_s=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.2f", ns / 1e9 }')
    printf '%-26s %12d %10s %14s %12.1f MiB\n' "$(basename "$file")" "$lines" "$wc_s" "$mf_s" "$(awk -v kb="$PEAK_KB" 'BEGIN { print kb / 1024 }')"
done
