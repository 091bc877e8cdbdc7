#!/usr/bin/env bash
# How fast does `mailfuse watch` take in syslog from many mail servers at
# once, and how soon after the line that gives a hijack away does the
# incident come? SENDERS (20) TCP connections, each a mail server of its
# own (`mailfuse-loggen replay`: mx01, mx02…, each message told whole by
# one of them), replay a Postfix + Dovecot log with a hijack burst in the
# middle (`mailfuse-loggen bench --format postfix`), octet-counted: once as
# fast as watch takes them (lines per second received and parsed, beside
# the same log followed as a file), once at RATE lines a second, each line
# sent as it is due, for the latency from the line that tripped the hijack
# (the second of the log its `detected_at` names, as the replay noted when
# it sent that second's lines) to the incident in watch's log. At full
# speed that latency is mostly the backlog in the senders' socket buffers,
# so both are printed.
#
# Usage: bench/ingest.sh
#   SIZE=500M bench/ingest.sh     size of the generated log (default 100M)
#   SENDERS=50 bench/ingest.sh    connections sending at once (default 20)
#   RATE=20000 bench/ingest.sh    lines a second of the paced run (default 50000)
#   REGEN=1 bench/ingest.sh       regenerate the log
#
# The numbers are for humans: nothing here asserts a timing. Run on an
# otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NAME=bench/ingest.sh
SIZE="${SIZE:-100M}"
SENDERS="${SENDERS:-20}"
RATE="${RATE:-50000}"
# shellcheck source=bench/lib.sh
source bench/lib.sh
command -v python3 >/dev/null || die "python3 is needed for the time arithmetic"
command -v curl >/dev/null || die "curl is needed to read watch's metrics"

build_release
DATA=bench/data/postfix-mail-$SIZE.log
ensure_log postfix
warm_cache

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }

# Starts watch on config $1 (stderr to $2); waits for its metrics on $3.
WATCH_PID=""
start_watch() {
    RUST_LOG=mailfuse=info "$MAILFUSE" watch -c "$1" 2>"$2" &
    WATCH_PID=$!
    until curl -sf "http://127.0.0.1:$3/metrics" >/dev/null; do
        kill -0 "$WATCH_PID" 2>/dev/null || { cat "$2" >&2; die "watch stopped"; }
        sleep 0.05
    done
}
stop_watch() {
    kill -TERM "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
    WATCH_PID=""
}
trap 'stop_watch; rm -rf "$TMP"' EXIT

# The sum of metric $1 on port $2.
metric() { curl -sf "http://127.0.0.1:$2/metrics" | awk -v m="$1" 'index($0, m) == 1 { n += $NF } END { printf "%d", n }'; }
# Waits until watch on port $1 has counted $LINES lines read.
wait_read() { until [[ "$(metric mailfuse_lines_read_total "$1")" -ge "$LINES" ]]; do sleep 0.05; done; }

# Replays the log over SENDERS connections to a fresh watch, with the
# replay's options $1 (a rate, or none); run $2 names its files. Sets
# STARTED, SENT and READ_ALL (ns) and RECEIVED, DROPPED, TOO_LONG.
replay_to_watch() {
    local options="$1" run="$2" port metrics
    port=$(free_port)
    metrics=$(free_port)
    cat >"$TMP/$run.toml" <<CONF
[watch]
state = "$TMP/$run.db"
dry_run = true
metrics_listen = "127.0.0.1:$metrics"

[watch.syslog]
tcp = ["127.0.0.1:$port"]
max_connections = $((SENDERS + 8))
CONF
    start_watch "$TMP/$run.toml" "$TMP/$run.err" "$metrics"
    STARTED=$(now_ns)
    # shellcheck disable=SC2086 # $options is zero or two words
    "$LOGGEN" replay --log "$DATA" --to "127.0.0.1:$port" --senders "$SENDERS" $options \
        --times "$TMP/$run.times" 2>"$TMP/$run.replay"
    SENT=$(now_ns)
    wait_read "$metrics"
    READ_ALL=$(now_ns)
    RECEIVED=$(metric mailfuse_syslog_messages_total "$metrics")
    DROPPED=$(metric mailfuse_syslog_dropped_total "$metrics")
    TOO_LONG=$(metric mailfuse_syslog_too_long_total "$metrics")
    "$MAILFUSE" status --format json -c "$TMP/$run.toml" >"$TMP/$run.status"
    stop_watch
}

# 1. Syslog over TCP from SENDERS connections, as fast as taken.
say "replaying $LINES lines over $SENDERS connections"
replay_to_watch "" fast
started=$STARTED sent=$SENT read_all=$READ_ALL
received=$RECEIVED dropped=$DROPPED too_long=$TOO_LONG

# 2. The same log followed as a file.
metrics=$(free_port)
cat >"$TMP/file.toml" <<CONF
[watch]
logs = ["$(realpath "$DATA")"]
state = "$TMP/file.db"
dry_run = true
metrics_listen = "127.0.0.1:$metrics"
CONF
say "following the same log as a file"
start_watch "$TMP/file.toml" "$TMP/file.err" "$metrics"
file_started=$(now_ns)
wait_read "$metrics"
file_read=$(now_ns)
stop_watch

# 3. The same at RATE lines a second, for the latency.
say "replaying at $RATE lines a second ($((LINES / RATE)) s)"
replay_to_watch "--rate $RATE" paced

# The latency of run $1: from the line that tripped its first
# compromised_account incident to the incident in watch's log.
latency() {
    python3 - "$TMP/$1.status" "$TMP/$1.err" "$TMP/$1.times" <<'PY'
import datetime, json, sys
status, log, times = sys.argv[1:]
incident = next((i for i in json.load(open(status))["incidents"]
                 if i["kind"] == "compromised_account"), None)
if incident is None:
    print("no compromised_account incident found (does the log hold a hijack burst? "
          "the generator says so; 100M and more do)"); sys.exit()
line = next(l for l in open(log) if f'key="{incident["key"]}"' in l and "incident:" in l)
# watch's log stamp: 2026-12-05T02:39:33.819829Z
seen = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
seen_ns = int(seen.replace(tzinfo=datetime.timezone.utc).timestamp()) * 10**9 + seen.microsecond * 1000
detected = datetime.datetime.fromisoformat(incident["detected_at"].replace("Z", "+00:00"))
stamp = f'{detected.strftime("%b")} {detected.day:2d} {detected.strftime("%H:%M:%S")}'
sent = {s: (int(a), int(b)) for s, a, b in (l.rstrip("\n").split("\t") for l in open(times))}
first, last = sent[stamp]
print(f'{incident["subject"]}, tripped by a line of {stamp}: line to incident '
      f'{(seen_ns - last) / 1e6:.1f} to {(seen_ns - first) / 1e6:.1f} ms')
PY
}

print_file_line
awk -v lines="$LINES" -v senders="$SENDERS" -v t0="$started" -v t1="$sent" -v t2="$read_all" \
    -v f0="$file_started" -v f1="$file_read" -v received="$received" -v dropped="$dropped" -v too_long="$too_long" '
    BEGIN {
        net = (t2 - t0) / 1e9; file = (f1 - f0) / 1e9
        printf "%-44s %9s %12s\n", "watch reading", "seconds", "lines/s"
        printf "%-44s %9.2f %12.0f\n", "syslog over TCP, " senders " senders (sent in " sprintf("%.2f", (t1 - t0) / 1e9) " s)", net, lines / net
        printf "%-44s %9.2f %12.0f\n", "the same log followed as a file", file, lines / file
        printf "\nsyslog / file: %.2f of the file rate; %d messages received, %d dropped, %d too long\n", file / net, received, dropped, too_long
    }'
printf 'hijack at full speed: %s\n' "$(latency fast)"
printf 'hijack at %d lines/s:   %s\n' "$RATE" "$(latency paced)"
