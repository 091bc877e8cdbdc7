#!/usr/bin/env bash
# Builds the fuzz targets' seed corpora in fuzz/corpus/<target>/ from the
# repository, rather than committing them: pieces of 20 lines of the
# bundled Kerio example, of a small generated Postfix + Dovecot log and of
# a generated Postfix + Dovecot + Roundcube week (crates/loggen), the tiny
# hand-written seeds in fuzz/seeds/, and for detector_restore the states
# a detector fed those logs saves (examples/seeds.rs). Idempotent: the
# seeds are rewritten, what the fuzzer added is kept.
# Usage: fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
corpus=$PWD/corpus
generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT

targets=(parse_kerio parse_syslog parse_exim recognise detector detector_restore policy_request)
for target in "${targets[@]}"; do
    mkdir -p "$corpus/$target"
    if [ -d "seeds/$target" ]; then
        cp seeds/"$target"/* "$corpus/$target/"
    fi
done

loggen() { (cd "$root" && cargo run --quiet -p mailfuse-loggen -- "$@" >/dev/null); }
loggen bench --format postfix --size 256K --out "$generated/postfix.log"
loggen labelled --form postfix --seed 1 --out "$generated/week"
roundcube=$(grep -rl roundcube "$generated/week" | head -n 1)

# pieces LOG NAME TARGET...: the first 2,000 lines of LOG, 20 lines a seed,
# into each TARGET's corpus.
pieces() {
    local log=$1 name=$2 target
    shift 2
    for target in "$@"; do
        head -n 2000 "$log" | split -l 20 -d -a 3 - "$corpus/$target/$name-"
    done
}
for log in mail security audit; do
    pieces "$root/examples/kerio/$log.log" "kerio-$log" parse_kerio recognise detector
done
pieces "$generated/postfix.log" postfix parse_syslog recognise detector
pieces "$roundcube" week parse_syslog recognise detector
cp seeds/parse_exim/* "$corpus/recognise/"
cp seeds/parse_exim/* "$corpus/detector/"

cargo run --quiet --release --example seeds -- "$corpus/detector_restore" \
    "$root/examples/kerio/mail.log" "$root/examples/kerio/security.log" \
    "$generated/postfix.log" "$roundcube" seeds/parse_exim/session.log

for target in "${targets[@]}"; do
    printf '%-18s %5d seeds\n' "$target" "$(find "$corpus/$target" -type f | wc -l)"
done
