#!/usr/bin/env bash
# Soak test of `mailfuse watch` (issue 17, point 7): not in CI's default
# path, run by hand. For MINUTES (default 30) watch follows a Postfix log
# written at a high rate — a labelled week of `mailfuse-loggen labelled
# --form postfix`, spread over the run — while:
#   - the log rotates every ROTATE_SECS (default 60): mv + new file, the
#     member before compressed (logrotate's `compress` + `delaycompress`);
#   - watch is killed with SIGKILL every KILL_SECS (default 150) and
#     restarted at once;
#   - its alert webhook is slow: a local receiver that sleeps SLOW seconds
#     (default 2) per alert and notes each one.
# At the end it prints lines written, events expected (`mailfuse scan` of
# every line written, in order) vs counted by watch (its saved state),
# incidents expected (scan's, and the generator's labels) vs recorded, and
# the alerts: deliveries the webhook received, distinct alerts among them
# (by alert id, the `Idempotency-Key` header), per incident, and each
# repeated delivery with whether a kill -9 cut it off (the webhook had it,
# watch had not recorded the answer) — the one repeat watch cannot avoid,
# which the receiver drops by its id.
#
# Usage: bench/soak.sh                 30 minutes
#        MINUTES=5 bench/soak.sh       shorter
#        BIN_DIR=target/debug bench/soak.sh   binaries already built there
#                                      (default: builds release ones)
# Settings: MINUTES, ROTATE_SECS, KILL_SECS, SLOW, SEED (the week), KEEP=1
# keeps the work directory. Exit status 1 if a line was lost or counted
# twice, an incident was not recorded, an incident was not alerted exactly
# once (one alert id received, one success journaled), or an alert was
# delivered again without a kill -9 cutting it off.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES="${MINUTES:-30}"
ROTATE_SECS="${ROTATE_SECS:-60}"
KILL_SECS="${KILL_SECS:-150}"
SLOW="${SLOW:-2}"
SEED="${SEED:-1}"
KEEP="${KEEP:-0}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/soak.sh: error: %s\n' "$*" >&2; exit 1; }

[[ "$MINUTES" =~ ^[1-9][0-9]*$ ]] || die "MINUTES must be a whole number of minutes, got '$MINUTES'"
command -v python3 >/dev/null || die "python3 is needed (the writer and the webhook receiver)"
if [[ -n "${BIN_DIR:-}" ]]; then
    MAILFUSE="$BIN_DIR/mailfuse"
    LOGGEN="$BIN_DIR/mailfuse-loggen"
else
    say "building release binaries"
    cargo build --release -p mailfuse -p mailfuse-loggen
    MAILFUSE="${CARGO_TARGET_DIR:-target}/release/mailfuse"
    LOGGEN="${CARGO_TARGET_DIR:-target}/release/mailfuse-loggen"
fi
[[ -x "$MAILFUSE" && -x "$LOGGEN" ]] || die "no $MAILFUSE or $LOGGEN: build them (cargo build -p mailfuse -p mailfuse-loggen) or unset BIN_DIR"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mailfuse-soak.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [[ -n "${WATCH_PID:-}" ]] && kill -9 "$WATCH_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    if [[ "$KEEP" == 1 ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

say "generating the labelled Postfix week (seed $SEED) in $WORK/week"
mapfile -t SCAN_ARGS < <("$LOGGEN" labelled --form postfix --seed "$SEED" --out "$WORK/week" 2>"$WORK/loggen.err") ||
    { cat "$WORK/loggen.err" >&2; die "mailfuse-loggen failed"; }
SOURCE="$(printf '%s\n' "${SCAN_ARGS[@]}" | grep -v '^--' | head -n 1)"
ZONE="$(printf '%s\n' "${SCAN_ARGS[@]}" | sed -n 's/^--timezone=//p')"
[[ -f "$SOURCE" && -n "$ZONE" ]] || die "mailfuse-loggen named no log or zone: ${SCAN_ARGS[*]}"

PORT_HOOK="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PORT_METRICS="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$WORK/logs"
cat >"$WORK/mailfuse.toml" <<EOF
[watch]
logs = ["$WORK/logs/mail.log"]
state = "$WORK/state.db"
timezone = "$ZONE"
save_every_secs = 5
metrics_listen = "127.0.0.1:$PORT_METRICS"

[actions]
act_within = "3650d"

[actions.webhook]
url = "http://127.0.0.1:$PORT_HOOK/alerts"
timeout_secs = 30
EOF

# The slow webhook: takes the alert, sleeps, answers, then notes one JSON
# line per delivery: its alert id (header and body), the incident (or the
# fault), when it arrived and when it was answered.
cat >"$WORK/hook.py" <<'EOF'
import http.server, json, sys, threading, time
slow, port, out = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        arrived = time.time()
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(slow)
        try:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            self.wfile.flush()
        except OSError:
            pass
        alert = json.loads(body)
        note = {"id": self.headers.get("idempotency-key"), "alert_id": alert.get("alert_id"),
                "incident": alert.get("incident"), "fault": alert.get("fault"),
                "arrived": arrived, "answered": time.time()}
        with lock, open(out, "a") as f:
            f.write(json.dumps(note) + "\n")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
EOF

# The writer: the week's lines over the run, in chunks ten times a second,
# rotating; every line written is also kept in written.log, in order.
cat >"$WORK/writer.py" <<'EOF'
import gzip, os, shutil, sys, time
source, logs, written, seconds, rotate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
lines = open(source, "rb").readlines()
live = os.path.join(logs, "mail.log")
def member(n, gz):
    return os.path.join(logs, "mail.log.%d%s" % (n, ".gz" if gz else ""))
def rotate_now():
    # mail.log.N.gz -> N+1, mail.log.1 -> 2.gz (compressed), mail.log -> 1
    n = 1
    while os.path.exists(member(n + 1, True)):
        n += 1
    for k in range(n, 1, -1):
        os.rename(member(k, True), member(k + 1, True))
    if os.path.exists(member(1, False)):
        with open(member(1, False), "rb") as f, gzip.open(member(2, True) + ".tmp", "wb") as g:
            shutil.copyfileobj(f, g)
        os.rename(member(2, True) + ".tmp", member(2, True))
        os.remove(member(1, False))
    os.rename(live, member(1, False))
    open(live, "ab").close()
start = time.monotonic()
last_rotation = start
rotations = 0
done = 0
out = open(live, "ab")
copy = open(written, "ab")
while done < len(lines):
    now = time.monotonic()
    due = min(len(lines), int(len(lines) * (now - start) / seconds) + 1)
    if due > done:
        chunk = b"".join(lines[done:due])
        out.write(chunk); out.flush()
        copy.write(chunk)
        done = due
    if now - last_rotation >= rotate:
        out.close()
        rotate_now()
        rotations += 1
        out = open(live, "ab")
        last_rotation = now
    time.sleep(0.1)
out.close(); copy.close()
print("%d %d" % (done, rotations))
EOF

start_watch() {
    "$MAILFUSE" watch --config "$WORK/mailfuse.toml" >>"$WORK/watch.log" 2>&1 &
    WATCH_PID=$!
}

date +%s.%N >"$WORK/started"
python3 "$WORK/hook.py" "$SLOW" "$PORT_HOOK" "$WORK/alerts.jsonl" &
PIDS+=($!)
: >"$WORK/logs/mail.log"
start_watch
SECONDS_RUN=$((MINUTES * 60))
say "soaking for $MINUTES min: rotation every ${ROTATE_SECS}s, kill -9 every ${KILL_SECS}s, webhook ${SLOW}s per alert"
python3 "$WORK/writer.py" "$SOURCE" "$WORK/logs" "$WORK/written.log" "$SECONDS_RUN" "$ROTATE_SECS" >"$WORK/writer.out" &
WRITER=$!
PIDS+=("$WRITER")
KILLS=0
NEXT_KILL=$((SECONDS + KILL_SECS))
while kill -0 "$WRITER" 2>/dev/null; do
    if ((SECONDS >= NEXT_KILL)); then
        kill -9 "$WATCH_PID"
        date +%s.%N >>"$WORK/kills"
        wait "$WATCH_PID" 2>/dev/null || true
        KILLS=$((KILLS + 1))
        say "kill -9 #$KILLS at ${SECONDS}s; restarting"
        start_watch
        NEXT_KILL=$((SECONDS + KILL_SECS))
    fi
    sleep 1
done
wait "$WRITER" || die "the writer failed"
read -r LINES ROTATIONS <"$WORK/writer.out"

say "the writer is done; scanning every line written for the expected figures"
"$MAILFUSE" scan --format json "--timezone=$ZONE" "$WORK/written.log" >"$WORK/scan.json" || [[ $? == 1 ]]
EXPECTED_EVENTS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stats"]["events"])' "$WORK/scan.json")"

status() { "$MAILFUSE" status --format json --recent 1000000 --config "$WORK/mailfuse.toml"; }
counted() { status | python3 -c 'import json,sys; print((json.load(sys.stdin)["progress"] or {"stats":{"events":0}})["stats"]["events"])'; }
pending() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from pending_alerts").fetchone()[0])' "$WORK/state.db"; }
say "waiting for watch to catch up ($EXPECTED_EVENTS events) and send every alert"
for ((i = 0; i < 600; i++)); do
    if [[ "$(counted)" -ge "$EXPECTED_EVENTS" && "$(pending)" == 0 ]]; then break; fi
    sleep 1
done
kill -TERM "$WATCH_PID"
wait "$WATCH_PID" || say "watch exited with status $? at SIGTERM"
WATCH_PID=
status >"$WORK/status.json"

python3 - "$WORK" "$LINES" "$ROTATIONS" "$KILLS" <<'EOF'
import collections, json, os, sys
work, lines, rotations, kill_count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
scan = json.load(open(work + "/scan.json"))
status = json.load(open(work + "/status.json"))
labels = json.load(open(work + "/week/labels.json"))

# An incident by kind, account (or network) and start: its IPs are left
# out, as a campaign's grow after watch recorded it (scan reports them all).
def key(incident):
    subject = incident.get("account") or incident.get("network") or "ips"
    return "%s:%s:%s" % (incident["kind"], json.dumps(subject), incident["first_seen"])

expected = collections.Counter(key(i) for i in scan.get("incidents", []))
recorded = collections.Counter(key(i["incident"]) for i in status["incidents"])
deliveries = [json.loads(line) for line in open(work + "/alerts.jsonl")] if os.path.exists(work + "/alerts.jsonl") else []
kills = [float(t) for t in open(work + "/kills")] if os.path.exists(work + "/kills") else []
# Alerts are matched to watch's incidents by the incident they carry (the
# one recorded), and counted by watch's key of it.
def canon(incident):
    return json.dumps(incident, sort_keys=True)
incident_keys = [i["key"] for i in status["incidents"]]
key_of = {canon(i["incident"]): i["key"] for i in status["incidents"]}
journaled = collections.Counter(a["incident"] for a in status["actions"] if a["action"] == "webhook" and a["ok"])
counted = status["progress"]["stats"]["events"]
classes = collections.Counter(s.get("class", "?") for s in labels.get("scenarios", []))

print("soak: %d lines written, %d rotations, %d kill -9" % (lines, rotations, kill_count))
print("events: expected %d (scan of every line written), counted %d by watch: %d lost, %d counted twice"
      % (scan["stats"]["events"], counted, max(0, scan["stats"]["events"] - counted), max(0, counted - scan["stats"]["events"])))
print("labelled scenarios: %s" % ", ".join("%s %d" % kv for kv in sorted(classes.items())))
# Watch records each tier as it trips: suspicious activity, then the hijack
# of the same account; scan's report has the tier the account ended at.
hijacked = {(k.split(":", 1)[1]) for k in recorded if k.startswith("compromised_account:")}
escalated = {k for k in set(recorded) - set(expected)
             if k.startswith("suspicious_activity:") and k.split(":", 1)[1] in hijacked}
missing = set(expected) - set(recorded)
extra = set(recorded) - set(expected) - escalated
print("incidents: expected %d (scan), recorded %d by watch (%d of them the suspicious tier of an account also recorded hijacked); missing %d, extra %d"
      % (sum(expected.values()), sum(recorded.values()), len(escalated), len(missing), len(extra)))
for k in sorted(missing): print("  missing: " + k)
for k in sorted(extra): print("  extra: " + k)
print("alerts journaled as sent: %d incidents exactly once, %d never, %d more than once"
      % (sum(1 for k in incident_keys if journaled[k] == 1), sum(1 for k in incident_keys if journaled[k] == 0),
         sum(1 for k in incident_keys if journaled[k] > 1)))

# What the webhook received: deliveries, distinct alerts (by id), repeats.
unlabelled = sum(1 for d in deliveries if not d["id"] or d["id"] != d["alert_id"])
by_id = collections.defaultdict(list)
for d in deliveries:
    by_id[d["id"]].append(d)
ids_of = collections.defaultdict(set)
unmatched = 0
for alert_id, got in by_id.items():
    if got[0]["incident"]:
        k = key_of.get(canon(got[0]["incident"]))
        if k is None:
            unmatched += 1
        else:
            ids_of[k].add(alert_id)
faults = sum(1 for got in by_id.values() if got[0]["fault"])
# A delivery a kill -9 cut off: the kill fell between its arrival and a
# second after its answer (watch records the answer within milliseconds).
def cut_off(d):
    return any(d["arrived"] <= t <= d["answered"] + 1.0 for t in kills)
repeats = [(alert_id, got) for alert_id, got in by_id.items() if len(got) > 1]
again = sum(len(got) - 1 for _, got in repeats)
explained = sum(1 for _, got in repeats for d in got[:-1] if cut_off(d))
print("alerts received by the webhook: %d deliveries, %d distinct alerts (by alert id; %d of them faults), %d without a matching id in header and body"
      % (len(deliveries), len(by_id), faults, unlabelled))
print("alerts per incident (distinct ids): %d incidents exactly one, %d none, %d more than one; %d alerts of no recorded incident"
      % (sum(1 for k in incident_keys if len(ids_of[k]) == 1), sum(1 for k in incident_keys if not ids_of[k]),
         sum(1 for k in incident_keys if len(ids_of[k]) > 1), unmatched))
print("repeated deliveries: %d (%d alerts), %d of them cut off by a kill -9 before watch recorded the answer, %d unexplained"
      % (again, len(repeats), explained, again - explained))
started = float(open(work + "/started").read())
for alert_id, got in repeats:
    about = key_of.get(canon(got[0]["incident"]), "?") if got[0]["incident"] else "fault " + got[0]["fault"]["kind"]
    print("  %s (%s):" % (alert_id, about))
    for d in got:
        cut = [t for t in kills if d["arrived"] <= t <= d["answered"] + 1.0]
        print("    arrived at %.1f s, answered at %.1f s%s" % (d["arrived"] - started, d["answered"] - started,
              "".join(", kill -9 at %.1f s" % (t - started) for t in cut)))
exactly_once = all(len(ids_of[k]) == 1 and journaled[k] == 1 for k in incident_keys)
ok = (counted == scan["stats"]["events"] and not missing and exactly_once
      and again == explained and unlabelled == 0 and unmatched == 0)
sys.exit(0 if ok else 1)
EOF
