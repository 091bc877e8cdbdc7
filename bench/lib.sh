# Shared by the benchmark scripts (bench/scan.sh, bench/postfix.sh): sourced,
# not run. The caller sets BENCH_NAME (for messages) and runs from the
# repository's root.
#
# Settings read from the environment:
#   SIZE   size of the generated log (default 500M; K/M/G are binary)
#   REGEN  1 regenerates the log even if one of the right size exists
#   RUNS   runs per tool, taking turns, the best counting (default 7)
#   CARGO_TARGET_DIR  where cargo builds (default target): the binaries
#          measured are those of the release build there
#
# Nothing is dropped from the page cache (that needs root): one read warms
# the cache, then the tools take turns RUNS times and the best time counts, so all
# tools are measured reading from memory. Run on an otherwise idle machine;
# the numbers are for humans, nothing here asserts a timing.

SIZE="${SIZE:-500M}"
REGEN="${REGEN:-0}"
RUNS="${RUNS:-7}"
MAILFUSE="${CARGO_TARGET_DIR:-target}/release/mailfuse"
LOGGEN="${CARGO_TARGET_DIR:-target}/release/mailfuse-loggen"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

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

# Installs Debian package $1 unless file $2 exists; $3 says why it is needed.
ensure_package() {
    local package="$1" file="$2" why="$3"
    [[ -x "$file" ]] && return 0
    say "installing $why (Debian package '$package')"
    command -v apt-get >/dev/null || die "$file is missing and apt-get is not available: install $package"
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || die "installing '$package' needs root or sudo"
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get install -y "$package" || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y "$package"; }
    [[ -x "$file" ]] || die "installing '$package' did not provide $file"
}

# GNU time measures the peak resident memory (`-v`); Debian ships it as `time`.
ensure_gnu_time() {
    ensure_package time /usr/bin/time "GNU time to measure peak memory"
    /usr/bin/time -v true 2>/dev/null || die "/usr/bin/time does not understand -v (not GNU time?)"
}

build_release() {
    say "building release binaries"
    cargo build --release -p mailfuse -p mailfuse-loggen
}

# Generates DATA in log format $1 unless a file of the right size is there.
# The generator stops after the message reaching the size, then writes the
# last messages' deliveries: a correct file is at least SIZE and barely more.
ensure_log() {
    local format="$1" target have
    target=$(size_bytes)
    have=$(stat -c %s "$DATA" 2>/dev/null || echo 0)
    if [[ "$REGEN" != 1 && "$have" -ge "$target" && "$have" -lt $((target + (1 << 20))) ]]; then
        say "reusing $DATA ($have bytes)"
    else
        say "generating $DATA ($SIZE)"
        mkdir -p "$(dirname "$DATA")"
        "$LOGGEN" bench --format "$format" --size "$SIZE" --out "$DATA.tmp"
        mv "$DATA.tmp" "$DATA"
    fi
    BYTES=$(stat -c %s "$DATA")
}

# Reads DATA once so that every tool then reads it from memory; sets LINES.
warm_cache() {
    say "warming the page cache"
    cat "$DATA" >/dev/null
    LINES=$(wc -l <"$DATA")
}

# Each run_* runs its tool once; best_of keeps the shortest wall time in BEST_NS.
# Counts go to a file, not /dev/null: GNU grep stops at the first match when
# its output is /dev/null, which would time nothing.
run_wc() { wc -l "$DATA" >"$TMP/count"; }

# `mailfuse scan`, keeping its peak memory in PEAK_KB. Exit status 1 means
# "incidents found": a successful scan. With MAILFUSE_MAY_FAIL=1 a failed
# scan is noted in MAILFUSE_FAILED and timed anyway (for a format mailfuse
# cannot read yet); otherwise it stops the benchmark.
PEAK_KB=0
MAILFUSE_FAILED=""
run_mailfuse() {
    local rc=0 rss
    # stderr goes to a file: no progress bar (it only draws on a terminal),
    # and the reason is at hand if the run fails.
    /usr/bin/time -v -o "$TMP/time.txt" "$MAILFUSE" scan --format json "$DATA" \
        >/dev/null 2>"$TMP/mailfuse.err" || rc=$?
    if ((rc > 1)); then
        if [[ "${MAILFUSE_MAY_FAIL:-0}" != 1 ]]; then
            cat "$TMP/mailfuse.err" >&2
            die "'mailfuse scan' failed with exit status $rc"
        fi
        MAILFUSE_FAILED="exit status $rc: $(tr '\n' ' ' <"$TMP/mailfuse.err" | sed -e 's/  */ /g' -e 's/ $//')"
    fi
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$TMP/time.txt")
    ((rss > PEAK_KB)) && PEAK_KB=$rss
    return 0
}

BEST_NS=0
best_of() {
    local i
    BEST_NS=0
    for ((i = 1; i <= RUNS; i++)); do
        time_into BEST_NS "$1"
    done
}

# Runs "$2" once, in this shell (it may keep state, or stop the benchmark),
# and keeps in the variable named "$1" the shorter of its wall time and the
# one it holds (0: none yet), in nanoseconds.
time_into() {
    local start elapsed
    start=$(date +%s%N)
    "$2"
    elapsed=$(($(date +%s%N) - start))
    if ((${!1} == 0 || elapsed < ${!1})); then printf -v "$1" '%d' "$elapsed"; fi
}

# Builds bench/core_latency.rs once into CORE_LATENCY ("none" when it cannot
# measure: one core, no rustc). Not from within `$(...)`: a subshell's
# assignment would be lost and the probe built again at every turn.
CORE_LATENCY=""
build_core_latency() {
    [[ -n "$CORE_LATENCY" ]] && return
    CORE_LATENCY="$TMP/core_latency"
    if (($(nproc) < 2)) || ! rustc -O -o "$CORE_LATENCY" bench/core_latency.rs 2>/dev/null; then
        CORE_LATENCY=none
    fi
}

# A cache line's round trip between two cores, in nanoseconds, or "?" when
# it cannot be measured: see bench/core_latency.rs.
core_round_trip() {
    if [[ "$CORE_LATENCY" == none ]]; then
        echo "?"
        return
    fi
    timeout 10 "$CORE_LATENCY" 2>/dev/null || echo "?"
}

# Runs each tool of "$@" (VAR=run_function) once a turn, RUNS turns, and
# keeps in each VAR its best wall time in nanoseconds (and PEAK_KB for
# `run_mailfuse`). The tools take turns, run after run, so a machine whose
# speed drifts (a VM with busy neighbours) slows them alike and the ratios
# hold. Before each turn the cores' round trip is measured into ROUND_TRIPS:
# a scan's two threads hand their blocks over between cores, and a VM's host
# may move its virtual CPUs apart, which slows the scan and not the
# one-threaded tools.
ROUND_TRIPS=""
time_in_turns() {
    local i tool
    for tool in "$@"; do printf -v "${tool%%=*}" '%d' 0; done
    ROUND_TRIPS=""
    build_core_latency
    for ((i = 1; i <= RUNS; i++)); do
        ROUND_TRIPS+="$(core_round_trip) "
        for tool in "$@"; do time_into "${tool%%=*}" "${tool#*=}"; done
    done
}

# Times `wc -l`, the caller's `run_grep` and `mailfuse scan` on DATA, best of
# RUNS each, into WC_NS, GREP_NS and MAILFUSE_NS (see time_in_turns).
time_wc_grep_mailfuse() {
    time_in_turns WC_NS=run_wc GREP_NS=run_grep MAILFUSE_NS=run_mailfuse
}

# The cores' round trips measured during the timing, in nanoseconds.
print_round_trips() {
    printf "two cores' round trip before each turn (ns): %s\n" "${ROUND_TRIPS% }"
}

# The table's title: the file, its size and line count.
print_file_line() {
    printf '\n%s: %d bytes (%.0f MB), %d lines\n\n' "$DATA" "$BYTES" "$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "$LINES"
}

# A temporary directory for counts and measurements, removed on exit.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
