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

SIZE="${SIZE:-500M}"
REGEN="${REGEN:-0}"
RUNS=3
DATA=bench/data/kerio-mail.log
MAILFUSE=target/release/mailfuse
LOGGEN=target/release/mailfuse-loggen

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/scan.sh: error: %s\n' "$*" >&2; exit 1; }

# SIZE in bytes, with the same binary K/M/G suffixes as mailfuse-loggen.
size_bytes() {
    local n="${SIZE%[KkMmGg]}" unit="${SIZE:${#SIZE}-1}"
    [[ "$n" =~ ^[0-9]+$ ]] || die "SIZE must be a number with an optional K, M or G suffix, got '$SIZE'"
    case "$unit" in
        K | k) echo $((n << 10)) ;;
        M | m) echo $((n << 20)) ;;
        G | g) echo $((n << 30)) ;;
        *) echo "$n" ;;
    esac
}

# GNU time measures the peak resident memory (`-v`); Debian ships it as `time`.
ensure_gnu_time() {
    if [[ ! -x /usr/bin/time ]]; then
        say "installing GNU time (Debian package 'time') to measure peak memory"
        command -v apt-get >/dev/null || die "/usr/bin/time is missing and apt-get is not available: install GNU time"
        local sudo=()
        if [[ "$(id -u)" -ne 0 ]]; then
            command -v sudo >/dev/null || die "installing 'time' needs root or sudo"
            sudo=(sudo)
        fi
        "${sudo[@]}" apt-get install -y time || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y time; }
    fi
    /usr/bin/time -v true 2>/dev/null || die "/usr/bin/time does not understand -v (not GNU time?)"
}

ensure_gnu_time

say "building release binaries"
cargo build --release -p mailfuse -p mailfuse-loggen

# The generator stops after the line reaching the size, then writes the last
# messages' deliveries: a correct file is at least SIZE and barely more.
target=$(size_bytes)
have=$(stat -c %s "$DATA" 2>/dev/null || echo 0)
if [[ "$REGEN" != 1 && "$have" -ge "$target" && "$have" -lt $((target + (1 << 20))) ]]; then
    say "reusing $DATA ($have bytes)"
else
    say "generating $DATA ($SIZE)"
    mkdir -p "$(dirname "$DATA")"
    "$LOGGEN" bench --size "$SIZE" --out "$DATA.tmp"
    mv "$DATA.tmp" "$DATA"
fi
bytes=$(stat -c %s "$DATA")

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

say "warming the page cache"
cat "$DATA" >/dev/null
lines=$(wc -l <"$DATA")

# Each run_* runs its tool once; best_of keeps the shortest wall time in BEST_NS.
# Counts go to a file, not /dev/null: GNU grep stops at the first match when
# its output is /dev/null, which would time nothing.
run_wc() { wc -l "$DATA" >"$TMP/count"; }
run_grep() { grep -c 'Recv:' "$DATA" >"$TMP/count"; }

PEAK_KB=0
run_mailfuse() {
    local rc=0 rss
    # stderr goes to a file: no progress bar (it only draws on a terminal),
    # and the reason is at hand if the run fails.
    /usr/bin/time -v -o "$TMP/time.txt" "$MAILFUSE" scan --format json "$DATA" \
        >/dev/null 2>"$TMP/mailfuse.err" || rc=$?
    # Exit status 1 means "incidents found": a successful scan of this file.
    if ((rc > 1)); then
        cat "$TMP/mailfuse.err" >&2
        die "'mailfuse scan' failed with exit status $rc"
    fi
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$TMP/time.txt")
    ((rss > PEAK_KB)) && PEAK_KB=$rss
    return 0
}

BEST_NS=0
best_of() {
    local start elapsed i
    BEST_NS=0
    for ((i = 1; i <= RUNS; i++)); do
        start=$(date +%s%N)
        "$1"
        elapsed=$(($(date +%s%N) - start))
        if ((BEST_NS == 0 || elapsed < BEST_NS)); then BEST_NS=$elapsed; fi
    done
}

say "timing, best of $RUNS runs each"
best_of run_wc
wc_ns=$BEST_NS
best_of run_grep
grep_ns=$BEST_NS
best_of run_mailfuse
mailfuse_ns=$BEST_NS

printf '\n%s: %d bytes (%.0f MB), %d lines\n\n' "$DATA" "$bytes" "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "$lines"
awk -v bytes="$bytes" -v wc="$wc_ns" -v grep="$grep_ns" -v mf="$mailfuse_ns" -v rss="$PEAK_KB" '
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
