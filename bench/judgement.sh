#!/usr/bin/env bash
# Does mailfuse find what it should, and only that? The labelled benchmark
# (docs/benchmark.md): for each form and seed, mailfuse-loggen writes an
# organisation's week with hijacks, look-alikes and attacks hidden in it and
# their ground truth (labels.json); `mailfuse scan --format json` reads the
# week; `mailfuse-loggen score` judges every report against its labels and
# prints recall per hijack kind, false locks and alerts per look-alike kind,
# attacks reported, detection delay and spam accepted before detection, per
# form and overall.
#
# Usage: bench/judgement.sh [--check]
#   --check                  exit 1 if the acceptance bar of issue #13 is not met
#   SEEDS=20                 seeds 1..SEEDS per form (default 20)
#   FIRST_SEED=1             the first seed (weeks FIRST_SEED..FIRST_SEED+SEEDS-1)
#   FORMS="kerio8 kerio10 postfix"   the forms to run
#   JSON=out.json            also write the scores as JSON to this file
#
# Each week is generated into a temporary directory, scanned and deleted;
# only its labels and report are kept until the end (all removed at exit).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NAME=bench/judgement.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

CHECK=()
for arg in "$@"; do
    case "$arg" in
        --check) CHECK=(--check) ;;
        -h | --help)
            sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$arg' (see --help)" ;;
    esac
done
SEEDS="${SEEDS:-20}"
FIRST_SEED="${FIRST_SEED:-1}"
FORMS="${FORMS:-kerio8 kerio10 postfix}"
[[ "$SEEDS" =~ ^[0-9]+$ && "$SEEDS" -ge 1 ]] || die "SEEDS must be a positive number, got '$SEEDS'"
[[ "$FIRST_SEED" =~ ^[0-9]+$ ]] || die "FIRST_SEED must be a number, got '$FIRST_SEED'"

build_release

score_args=()
started=$(date +%s)
for form in $FORMS; do
    say "$form: seeds $FIRST_SEED..$((FIRST_SEED + SEEDS - 1))"
    for ((seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++)); do
        week="$TMP/$form-$seed"
        mapfile -t scan_args < <("$LOGGEN" labelled --form "$form" --seed "$seed" --out "$week/logs" 2>"$TMP/loggen.err") ||
            { cat "$TMP/loggen.err" >&2; die "generating $form week $seed failed"; }
        ((${#scan_args[@]} > 0)) || { cat "$TMP/loggen.err" >&2; die "mailfuse-loggen named no files for $form week $seed"; }
        rc=0
        "$MAILFUSE" scan --format json --no-progress "${scan_args[@]}" >"$week/report.json" 2>"$TMP/mailfuse.err" || rc=$?
        if ((rc > 1)); then
            cat "$TMP/mailfuse.err" >&2
            die "'mailfuse scan' failed on $form week $seed with exit status $rc (logs kept in $week/logs until exit)"
        fi
        mv "$week/logs/labels.json" "$week/labels.json"
        rm -rf "$week/logs"
        score_args+=(--labels "$week/labels.json" --report "$week/report.json")
    done
done
elapsed=$(($(date +%s) - started))

if [[ -n "${JSON:-}" ]]; then
    "$LOGGEN" score --json "${score_args[@]}" >"$JSON"
    say "scores written to $JSON"
fi
rc=0
"$LOGGEN" score "${CHECK[@]}" "${score_args[@]}" || rc=$?
printf '\n%d weeks generated, scanned and scored in %d s\n' "$((${#score_args[@]} / 4))" "$elapsed"
exit "$rc"
