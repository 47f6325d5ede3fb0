#!/usr/bin/env bash
# readme-check.sh: run the documentation's shell examples the way a newcomer
# pastes them, against a fresh server, and fail on any error or on an
# example output that does not match.
#
#   scripts/readme-check.sh [FILE.md ...]   (default: README.md docs/rooms.md docs/customer-service.md)
#
# It builds cmd/imserver (or uses $IMSERVER_BIN), starts it on free
# loopback ports with a temporary data directory and the admin password
# that README.md sets (IM_ADMIN_PASSWORD=…), then runs the ```sh blocks of
# the files, in order, in ONE bash session (as one terminal would), with
# `set -eo pipefail`. localhost:8080 and the mosquitto clients'
# `-h localhost [-p 1883]` are pointed at the test server.
#
# What counts as an error:
#   - a command that fails (non-zero status, in a pipeline too);
#   - curl answering HTTP 5xx, or 4xx unless the example shows an error
#     body as its output;
#   - an example output that does not match. An example output is a run of
#     comment lines right after a command that start with `{`, `[`, `"` or
#     `im/`, as in
#         received bob.out
#         # im/u/3 {"id":"…","conv":"u:2:3","seq":1,…}
#     The command's output must contain a line matching each of them, in
#     order: `…` matches anything and a number matches any number.
# A block preceded by the line `<!-- readme-check: skip -->` is not run (the
# quick start, which starts the server itself).
#
# Needs bash, curl, jq, mosquitto_sub/mosquitto_pub, stdbuf, awk, and go
# unless IMSERVER_BIN is set.
set -euo pipefail
cd "$(dirname "$0")/.."

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(README.md docs/rooms.md docs/customer-service.md)

for tool in curl jq mosquitto_sub mosquitto_pub stdbuf awk; do
	command -v "$tool" >/dev/null || { echo "readme-check: $tool not found (Debian: apt-get install curl jq mosquitto-clients)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/readme-check.XXXXXX")
server_pid= run_pid=
cleanup() {
	status=$?
	# The examples' own background mosquitto_subs are in run_pid's process group.
	[ -n "$run_pid" ] && kill -- -"$run_pid" 2>/dev/null || true
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
	if [ $status -ne 0 ] && [ -f "$work/server.log" ]; then
		echo "--- server log (end) ---" >&2
		tail -n 30 "$work/server.log" >&2
	fi
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT

bin=${IMSERVER_BIN:-}
if [ -z "$bin" ]; then
	bin=$work/imserver
	go build -o "$bin" ./cmd/imserver
fi

admin_password=$(grep -o 'IM_ADMIN_PASSWORD=[A-Za-z0-9._-]*' README.md | head -n 1 | cut -d= -f2)
[ -n "$admin_password" ] || { echo "readme-check: README.md sets no IM_ADMIN_PASSWORD=…" >&2; exit 1; }

# The server picks free ports (":0") and logs the addresses it listens on.
IM_ADMIN_PASSWORD=$admin_password "$bin" --http 127.0.0.1:0 --mqtt 127.0.0.1:0 \
	--db "sqlite:$work/data/im.db" >"$work/server.log" 2>&1 &
server_pid=$!
http= mqtt=
for _ in $(seq 300); do
	if line=$(grep -m1 'imserver ready' "$work/server.log"); then
		http=$(sed -E 's/.* http=([^ ]+).*/\1/' <<<"$line")
		mqtt=$(sed -E 's/.* mqtt=([^ ]+).*/\1/' <<<"$line")
		break
	fi
	kill -0 "$server_pid" 2>/dev/null || { echo "readme-check: the server exited" >&2; exit 1; }
	sleep 0.1
done
[ -n "$http" ] && [ -n "$mqtt" ] || { echo "readme-check: the server did not start" >&2; exit 1; }
curl -sf "http://$http/healthz" >/dev/null
mqtt_port=${mqtt##*:}

# The script: a prelude (curl that fails on HTTP errors, the output check),
# then every block of every file.
script=$work/run.sh
cat >"$script" <<EOF
set -eo pipefail
RC_DIR=$work
cd "\$RC_DIR"
EOF
cat >>"$script" <<'EOF'
curl() {
	local body code
	body=$(mktemp "$RC_DIR/body.XXXXXX")
	code=$(command curl -sS -o "$body" -w '%{http_code}' "$@") || { cat "$body"; rm -f "$body"; return 22; }
	cat "$body"
	rm -f "$body"
	if [ "$code" -ge 500 ] || { [ "$code" -ge 400 ] && [ -z "${RC_ALLOW_4XX:-}" ]; }; then
		echo "readme-check: HTTP $code from: curl $*" >&2
		return 22
	fi
}
rc_expect() { # rc_expect OUTPUT EXPECTED: each EXPECTED line matches an OUTPUT line, in order
	awk '
	function pattern(s,    out, i, c, n) {
		out = "^"
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			if (substr(s, i, 3) == "…") { out = out ".*"; i += 2; continue }
			if (c ~ /[0-9]/) {
				n = i; while (n <= length(s) && substr(s, n, 1) ~ /[0-9]/) n++
				out = out "[0-9]+"; i = n - 1; continue
			}
			if (c == "^") { out = out "\\^"; continue }
			if (c == "\\") { out = out "\\\\"; continue }
			if (index(".[]$()*+?{}|/", c)) { out = out "[" c "]"; continue }
			out = out c
		}
		return out "[[:space:]]*$"
	}
	NR == FNR { want[++nw] = $0; pat[nw] = pattern($0); next }
	{ got[++ng] = $0 }
	END {
		j = 1
		for (i = 1; i <= nw; i++) {
			while (j <= ng && got[j] !~ pat[i]) j++
			if (j > ng) {
				printf "readme-check: example output not found:\n  want: %s\n  got:\n", want[i] > "/dev/stderr"
				for (k = 1; k <= ng; k++) printf "    %s\n", got[k] > "/dev/stderr"
				exit 1
			}
			j++
		}
	}' "$2" "$1"
}
EOF

n=0
for f in "${files[@]}"; do
	echo "echo '### $f' >&2" >>"$script"
	awk -v file="$f" -v outdir="$work" -v prefix="$n" -v http_port="${http##*:}" -v mqtt_port="$mqtt_port" '
	function is_output(l) { return l ~ /^# ([\[{"]|im\/)/ }
	function flush(    i, allow) {
		if (cmd == "") return
		if (nexp == 0) { print cmd; cmd = ""; return }
		n++
		allow = 0
		for (i = 1; i <= nexp; i++) if (want[i] ~ /"error"/) allow = 1
		printf "# %s:%d\n", file, cmdline
		if (allow) print "RC_ALLOW_4XX=1"
		printf "{ %s\n} > \"$RC_DIR/out.%s.%d\"\n", cmd, prefix, n
		if (allow) print "RC_ALLOW_4XX="
		printf "cat \"$RC_DIR/out.%s.%d\"; echo\n", prefix, n
		printf "cat > \"$RC_DIR/want.%s.%d\" <<'"'"'RC_EOF'"'"'\n", prefix, n
		for (i = 1; i <= nexp; i++) print want[i]
		print "RC_EOF"
		printf "rc_expect \"$RC_DIR/out.%s.%d\" \"$RC_DIR/want.%s.%d\" || { echo \"readme-check: at %s:%d\" >&2; exit 1; }\n", prefix, n, prefix, n, file, cmdline
		cmd = ""; nexp = 0
	}
	/^<!-- readme-check: skip -->/ { skipnext = 1; next }
	!inblock && /^```sh[[:space:]]*$/ { inblock = 1; skipping = skipnext; skipnext = 0; next }
	!inblock { if ($0 !~ /^[[:space:]]*$/) skipnext = 0; next }
	inblock && /^```/ { flush(); inblock = 0; skipping = 0; next }
	skipping { next }
	{
		line = $0
		gsub(/localhost:8080/, "127.0.0.1:" http_port, line)
		if (line ~ /-h localhost/) {
			gsub(/ -p 1883/, "", line)
			gsub(/-h localhost/, "-h 127.0.0.1 -p " mqtt_port, line)
		}
		if (cmd != "" && cmd ~ /\\$/) { cmd = cmd "\n" line; next }
		if (cmd != "" && is_output(line)) { want[++nexp] = substr(line, 3); next }
		flush()
		if (line ~ /^[[:space:]]*(#.*)?$/) { print line; next }
		cmd = line; cmdline = NR
	}
	END { flush() }
	' "$f" >>"$script"
	n=$((n + 1))
done
echo 'kill $(jobs -p) 2>/dev/null || true' >>"$script"
echo 'echo "readme-check: every example ran and matched" >&2' >>"$script"

if [ -n "${READMECHECK_SHOW:-}" ]; then cat "$script"; fi
# Its own process group (setsid), so that whatever it leaves running is ended.
setsid env -u IM_ADMIN_PASSWORD bash "$script" &
run_pid=$!
wait "$run_pid"
