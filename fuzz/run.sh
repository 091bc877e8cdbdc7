#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (libFuzzer's -max_total_time),
# from the corpora fuzz/seed.sh builds (built first if missing), and fails
# if any target crashes: the input is then in fuzz/artifacts/<target>/, and
# `cargo +nightly fuzz run <target> <that file>` replays it. Prints the
# inputs each target ran. Built without a sanitizer (-s none): the code is
# safe Rust, and twice the executions find more than AddressSanitizer would
# here; debug assertions and overflow checks are on (fuzz/Cargo.toml).
# Usage: fuzz/run.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(parse_kerio parse_syslog parse_exim recognise detector detector_restore policy_request)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: no nightly toolchain (cargo-fuzz needs one): rustup toolchain install nightly --profile minimal (scripts/install-test-deps does it)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is not installed: cargo install --locked cargo-fuzz (scripts/install-test-deps does it)" >&2
    exit 1
fi
[ -d corpus ] || ./seed.sh

cargo +nightly fuzz build -s none
log=$(mktemp)
trap 'rm -f "$log"' EXIT
crashed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    if cargo +nightly fuzz run -s none "$target" -- -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        printf '%-18s %12s inputs in %s s, no crash\n' "$target" "${runs:-?}" "$seconds"
    else
        crashed+=("$target")
        echo "== $target CRASHED:" >&2
        # The panic and where, not the input's bytes libFuzzer prints after.
        grep -E -A3 "panicked at|ERROR: libFuzzer|Test unit written" "$log" | cut -c1-300 >&2
    fi
done
if [ ${#crashed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: crashes in ${crashed[*]}; inputs in fuzz/artifacts/" >&2
    exit 1
fi
