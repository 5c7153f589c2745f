#!/usr/bin/env bash
# bench-cluster.sh runs issue 14's cluster benchmarks on this machine:
# real `microchat serve` processes on loopback ports over a fresh
# PostgreSQL database (or SQLite file) per benchmark, loaded by
# cmd/microchat-bench from a process of its own.
#
#   scripts/bench-cluster.sh [STEP...]   run the steps (default: all of them)
#   scripts/bench-cluster.sh restart N   kill node N (A or B) and start it again
#                                        (what -restart-cmd runs during the storm)
#   scripts/bench-cluster.sh stop        stop the nodes this script started
#
# Steps:
#   latency   cross-node message latency: visitors on node A, agents on
#             node B, beside the same load with the agents on A, alternating
#             (-compare-single -rounds $LAT_ROUNDS)
#   storm     reconnect storm: node A carries $STORM_VISITORS visitor sockets
#             and half the chat load (the visitors' messages; the agents are
#             on B) and is killed (kill -$RESTART_SIGNAL) and started again;
#             the visitors come back within $STORM_SPREAD and resume
#   chatpath  the chat message path on PostgreSQL and on SQLite, one node
#             each, the same load, alternating ($CHAT_ROUNDS pairs; CHAT_STORES
#             picks the stores)
#   connect   $CONNECT_VISITORS idle widget sockets opened on one node,
#             for each of $CONNECT_STORES (postgres sqlite): connects per second
#   webhook   issue 15's webhook delivery under the chat load: one node per
#             run, for each of $WEBHOOK_STORES (default sqlite; postgres
#             too with WEBHOOK_STORES="sqlite postgres"), the chat load at
#             $WEBHOOK_RATE messages/s (default $CHAT_RATE if set, else
#             1000), each message a message.created delivered to the tool's
#             receiver (-webhook 127.0.0.1:$HOOK_PORT, the node's config
#             file naming it with a fresh secret); before each such run the
#             same load on a node without webhooks, $WEBHOOK_ROUNDS pairs
#             alternating, then a table of both and the ratio of their chat
#             latencies. Needs jq.
#
# Everything is under $BENCH_DIR (default /tmp/mcbench): binaries, configs,
# each node's log and pid, and each step's summary (STEP.txt). PostgreSQL: $BENCH_PG (default
# postgres://postgres@127.0.0.1:5432), which must let the user create
# databases; each benchmark gets its own, dropped at the end
# (BENCH_KEEP_DB=1 keeps them). The machine's load average is printed
# before each step; the tool prints it and the CPU stalls in each summary.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF="$ROOT/scripts/bench-cluster.sh"
DIR=${BENCH_DIR:-/tmp/mcbench}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
PORT_A=${PORT_A:-18181}
PORT_B=${PORT_B:-18182}
ADMIN_EMAIL=admin@bench.invalid
ADMIN_PASSWORD='bench cluster password 1'
RESTART_SIGNAL=${RESTART_SIGNAL:-KILL}

LAT_ROUNDS=${LAT_ROUNDS:-2}
LAT_RATE=${LAT_RATE:-1000}
LAT_VISITORS=${LAT_VISITORS:-1000}
LAT_DURATION=${LAT_DURATION:-15s}
STORM_VISITORS=${STORM_VISITORS:-19000}
STORM_ACTIVE=${STORM_ACTIVE:-1000}
STORM_RATE=${STORM_RATE:-200}
STORM_SPREAD=${STORM_SPREAD:-5s}
STORM_DURATION=${STORM_DURATION:-150s}
STORM_WAIT=${STORM_WAIT:-100s}
# Before CHAT_RATE's default: the webhook step's rate is CHAT_RATE when
# given, else the issue's 1,000/s.
WEBHOOK_RATE=${WEBHOOK_RATE:-${CHAT_RATE:-1000}}
WEBHOOK_STORES=${WEBHOOK_STORES:-sqlite}
WEBHOOK_ROUNDS=${WEBHOOK_ROUNDS:-2}
WEBHOOK_DURATION=${WEBHOOK_DURATION:-20s}
HOOK_PORT=${HOOK_PORT:-18190}
CHAT_ROUNDS=${CHAT_ROUNDS:-1}
CHAT_RATE=${CHAT_RATE:-5000}
CHAT_DURATION=${CHAT_DURATION:-20s}
CHAT_STORES=${CHAT_STORES:-postgres sqlite}
CONNECT_VISITORS=${CONNECT_VISITORS:-19000}
CONNECT_STORES=${CONNECT_STORES:-postgres sqlite}
# BENCH_SERVER_BIN: another microchat binary for the nodes (e.g. one built
# from main, to compare in the same conditions); default the one built here.
SERVER_BIN=${BENCH_SERVER_BIN:-}

log() { echo "bench-cluster: $(date -u +%H:%M:%S) $*" >&2; }
die() {
	log "$*"
	exit 1
}

bin() { echo "$DIR/bin/$1"; }

build() {
	mkdir -p "$DIR/bin"
	if [ -n "${BENCH_NO_BUILD:-}" ] && [ -x "$(bin microchat)" ] && [ -x "$(bin microchat-bench)" ]; then
		return
	fi
	log "building microchat and microchat-bench ($(git -C "$ROOT" rev-parse --short HEAD))"
	(cd "$ROOT" && CGO_ENABLED=0 go build -o "$(bin microchat)" ./cmd/microchat &&
		CGO_ENABLED=0 go build -o "$(bin microchat-bench)" ./cmd/microchat-bench)
}

# fresh_db NAME: creates database NAME (dropping an old one) and prints its URL.
fresh_db() {
	local name=$1
	psql "$PG/postgres" -qAt -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null
	psql "$PG/postgres" -qAt -c "CREATE DATABASE $name" >/dev/null
	echo "$PG/$name?sslmode=disable"
}

drop_db() {
	if [ -n "${BENCH_KEEP_DB:-}" ]; then return; fi
	psql "$PG/postgres" -qAt -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null || true
}

# config NODE PORT DBURL [YAML]: writes node NODE's config; DBURL empty is
# SQLite in the node's data directory (a fresh one); YAML is appended.
config() {
	local node=$1 port=$2 db=$3 extra=${4:-}
	rm -rf "$DIR/$node/data"
	mkdir -p "$DIR/$node/data"
	{
		echo "listen: 127.0.0.1:$port"
		echo "data_dir: $DIR/$node/data"
		if [ -n "$db" ]; then
			echo "database:"
			echo "  url: \"$db\""
		fi
		# BENCH_PPROF=1: Go's profiler on the node's port + 1000 (e.g.
		# go tool pprof http://127.0.0.1:19181/debug/pprof/profile).
		if [ -n "${BENCH_PPROF:-}" ]; then
			echo "pprof_listen: 127.0.0.1:$((port + 1000))"
		fi
		cat <<'YAML'
widget:
  rate_limits:
    starts_per_minute_per_ip: 0
    messages_per_minute: 0
    messages_per_minute_per_ip: 0
limits:
  sockets_per_ip: 0
  agent_messages_per_second: 0
  visitor_sockets: 19500
  login_attempts_per_minute: 1000
YAML
		if [ -n "$extra" ]; then echo "$extra"; fi
	} >"$DIR/$node/microchat.yaml"
	echo "$port" >"$DIR/$node/port"
}

# spawn NODE: starts node NODE's process in the background.
spawn() {
	local node=$1
	(
		ulimit -n 20000 2>/dev/null || true
		MICROCHAT_NODE_ID="bench-$node" MICROCHAT_ADMIN_EMAIL=$ADMIN_EMAIL MICROCHAT_ADMIN_PASSWORD=$ADMIN_PASSWORD \
			exec "${SERVER_BIN:-$(bin microchat)}" serve --config "$DIR/$node/microchat.yaml" >>"$DIR/$node/log" 2>&1 </dev/null
	) &
	echo $! >"$DIR/$node/pid"
}

# ready NODE: waits until node NODE answers /readyz (at most 60 s).
ready() {
	local node=$1 port
	port=$(cat "$DIR/$node/port")
	for _ in $(seq 600); do
		if curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then
			return
		fi
		if ! kill -0 "$(cat "$DIR/$node/pid")" 2>/dev/null; then
			tail -20 "$DIR/$node/log" >&2
			die "node $node exited"
		fi
		sleep 0.1
	done
	die "node $node not ready within 60 s (see $DIR/$node/log)"
}

# kill_node NODE SIGNAL: signals node NODE's process and waits for it to end.
kill_node() {
	local node=$1 sig=$2 pid
	[ -f "$DIR/$node/pid" ] || return 0
	pid=$(cat "$DIR/$node/pid")
	kill -"$sig" "$pid" 2>/dev/null || return 0
	# Gone, or a zombie (its parent, this script's first shell, reaps it
	# when it can).
	for _ in $(seq 300); do
		grep -qs '^State:[[:space:]]*[^Z]' "/proc/$pid/status" || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# start NODE PORT DBURL [YAML]: a fresh node, ready.
start() {
	config "$1" "$2" "$3" "${4:-}"
	: >"$DIR/$1/log"
	spawn "$1"
	ready "$1"
	log "node $1 up on 127.0.0.1:$2 (pid $(cat "$DIR/$1/pid"), ${3:-SQLite})"
}

stop_all() {
	for n in A B; do kill_node "$n" TERM; done
}

restart() {
	local node=$1
	log "restart $node: kill -$RESTART_SIGNAL $(cat "$DIR/$node/pid")"
	kill_node "$node" "$RESTART_SIGNAL"
	echo "--- restarted $(date -u +%H:%M:%S.%N)" >>"$DIR/$node/log"
	spawn "$node"
	log "restart $node: new pid $(cat "$DIR/$node/pid")"
}

bench() {
	MICROCHAT_BENCH_EMAIL=$ADMIN_EMAIL MICROCHAT_BENCH_PASSWORD=$ADMIN_PASSWORD "$(bin microchat-bench)" "$@"
}

header() {
	log "=== $1 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
}

A="http://127.0.0.1:$PORT_A"
B="http://127.0.0.1:$PORT_B"

step_latency() {
	header "latency: cross node against single node, PostgreSQL"
	local db=mcbench_latency
	start A "$PORT_A" "$(fresh_db $db)"
	start B "$PORT_B" "$PG/$db?sslmode=disable"
	local cmd=(-url "$A" -agent-url "$B" -compare-single -rounds "$LAT_ROUNDS" -visitors "$LAT_VISITORS" -active "$LAT_VISITORS"
		-agents 2 -rate "$LAT_RATE" -duration "$LAT_DURATION" -warmup 3s -senders 256 -floor=false)
	echo "microchat-bench ${cmd[*]}" | tee "$DIR/latency.txt"
	bench "${cmd[@]}" | tee -a "$DIR/latency.txt" || true
	stop_all
	drop_db $db
}

step_storm() {
	header "storm: node A with $STORM_VISITORS visitor sockets restarted (kill -$RESTART_SIGNAL), PostgreSQL"
	local db=mcbench_storm
	start A "$PORT_A" "$(fresh_db $db)"
	start B "$PORT_B" "$PG/$db?sslmode=disable"
	local cmd=(-url "$A" -agent-url "$B" -visitors "$STORM_VISITORS" -active "$STORM_ACTIVE" -agents 2 -rate "$STORM_RATE"
		-duration "$STORM_DURATION" -warmup 3s -senders 256 -floor=false
		-storm -restart-cmd "$SELF restart A" -storm-spread "$STORM_SPREAD" -storm-wait "$STORM_WAIT" -storm-settle 10s)
	echo "microchat-bench ${cmd[*]}" | tee "$DIR/storm.txt"
	bench "${cmd[@]}" | tee -a "$DIR/storm.txt" || true
	stop_all
	drop_db $db
}

step_chatpath() {
	local db=mcbench_chatpath
	local cmd=(-visitors 1000 -active 1000 -agents 2 -rate "$CHAT_RATE" -duration "$CHAT_DURATION" -warmup 3s -senders 256 -floor=false)
	: >"$DIR/chatpath.txt"
	for round in $(seq "$CHAT_ROUNDS"); do
		for store in $CHAT_STORES; do
			header "chatpath round $round: $store, $CHAT_RATE messages/s"
			if [ $store = postgres ]; then
				start A "$PORT_A" "$(fresh_db $db)"
			else
				start A "$PORT_A" ""
			fi
			echo "=== $store round $round: microchat-bench -url $A ${cmd[*]}" | tee -a "$DIR/chatpath.txt"
			bench -url "$A" "${cmd[@]}" | tee -a "$DIR/chatpath.txt" || true
			stop_all
			if [ $store = postgres ]; then drop_db $db; fi
		done
	done
}

step_connect() {
	local db=mcbench_connect
	: >>"$DIR/connect.txt"
	for store in $CONNECT_STORES; do
		header "connect: $CONNECT_VISITORS idle widget sockets, $store, ${SERVER_BIN:-$(bin microchat)}"
		if [ $store = postgres ]; then
			start A "$PORT_A" "$(fresh_db $db)"
		else
			start A "$PORT_A" ""
		fi
		local cmd=(-url "$A" -idle -visitors "$CONNECT_VISITORS" -agents 0 -duration 5s)
		echo "=== $store: microchat-bench ${cmd[*]}" | tee -a "$DIR/connect.txt"
		bench "${cmd[@]}" | tee -a "$DIR/connect.txt" || true
		stop_all
		if [ $store = postgres ]; then drop_db $db; fi
	done
}

# webhook_row FILE: one row of the webhook step's table from a run's JSON
# summary.
webhook_row() {
	jq -r '
		def f: if . == null then "-" elif . >= 100 then (round | tostring) else (. * 10 | round / 10 | tostring) end;
		.messages as $m | .webhook as $h | [
		($m.achieved_rate // 0 | round),
		(($m.lost_visitor_to_agent // 0) + ($m.lost_agent_to_visitor // 0)),
		"\($m.visitor_to_agent.p50_ms | f) / \($m.visitor_to_agent.p99_ms | f)",
		"\($m.agent_to_visitor.p50_ms | f) / \($m.agent_to_visitor.p99_ms | f)",
		(if $h then ($h.per_second | round) else "-" end),
		(if $h then "\($h.message_created_lag.p50_ms | f) / \($h.message_created_lag.p99_ms | f) / \($h.message_created_lag.max_ms | f)" else "-" end),
		(if $h then "\($h.duplicates) / \($h.messages_missing) / \($h.out_of_order)" else "-" end),
		(if $h then "\($h.server_attempts.ok // 0) / \($h.server_attempts.retry // 0) / \($h.server_attempts.failed // 0)" else "-" end),
		.cpu.load.server_cores, .cpu.load.tool_cores, (.cpu.load.cpu_pressure_pct | round), .load_average_before
	] | map(tostring) | join(" | ")' "$1"
}

# webhook_ratio STORE: the chat latency with the webhook over without, of
# the medians of the rounds' percentiles.
webhook_ratio() {
	local store=$1
	jq -rs '
		def med: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		def r(a; b): if a == null or b == null or b == 0 then "-" else (a / b * 100 | round / 100 | tostring) end;
		(map(select(.webhook == null))) as $base | (map(select(.webhook != null))) as $hook |
		def p(runs; f): [runs[] | .messages | select(. != null) | f] | med;
		"with/without webhook, medians of \($hook | length) and \($base | length) runs: visitor->agent p50 \(r(p($hook; .visitor_to_agent.p50_ms); p($base; .visitor_to_agent.p50_ms)))x, p99 \(r(p($hook; .visitor_to_agent.p99_ms); p($base; .visitor_to_agent.p99_ms)))x; agent->visitor p50 \(r(p($hook; .agent_to_visitor.p50_ms); p($base; .agent_to_visitor.p50_ms)))x, p99 \(r(p($hook; .agent_to_visitor.p99_ms); p($base; .agent_to_visitor.p99_ms)))x"
	' "$DIR"/webhook-"$store"-*.json
}

step_webhook() {
	command -v jq >/dev/null || die "the webhook step needs jq (apt-get install jq)"
	local db=mcbench_webhook secret hook
	secret="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
	hook=$(
		cat <<YAML
webhooks:
  allow_networks: [127.0.0.0/8]
  endpoints:
    - name: bench
      url: http://127.0.0.1:$HOOK_PORT/hook
      events: [message.created]
      secret: "$secret"
YAML
	)
	local cmd=(-url "$A" -visitors 1000 -active 1000 -agents 2 -rate "$WEBHOOK_RATE" -duration "$WEBHOOK_DURATION" -warmup 3s
		-senders 256 -floor=false)
	: >"$DIR/webhook.txt"
	rm -f "$DIR"/webhook-*.json
	for store in $WEBHOOK_STORES; do
		for round in $(seq "$WEBHOOK_ROUNDS"); do
			for kind in base hook; do
				local url="" extra="" args=("${cmd[@]}")
				if [ $store = postgres ]; then url=$(fresh_db $db); fi
				if [ $kind = hook ]; then
					extra=$hook
					args+=(-webhook "127.0.0.1:$HOOK_PORT" -webhook-secret "$secret")
				fi
				header "webhook round $round: $store, $WEBHOOK_RATE messages/s, $([ $kind = hook ] && echo "with the webhook" || echo "no webhook")"
				start A "$PORT_A" "$url" "$extra"
				echo "=== $store round $round $kind: microchat-bench ${args[*]/"$secret"/whsec_...}" | tee -a "$DIR/webhook.txt"
				bench "${args[@]}" -json-file "$DIR/webhook-$store-$round-$kind.json" | tee -a "$DIR/webhook.txt" || true
				stop_all
				cp "$DIR/A/log" "$DIR/webhook-$store-$round-$kind.log"
				echo "node log: $(grep -c . "$DIR/A/log") lines, $(grep -Eci 'level=(warn|error)|"level":"(warn|error)"' "$DIR/A/log") warnings or errors ($DIR/webhook-$store-$round-$kind.log)" |
					tee -a "$DIR/webhook.txt"
				if [ $store = postgres ]; then drop_db $db; fi
			done
		done
	done
	{
		echo "=== webhook: chat load at $WEBHOOK_RATE messages/s, $WEBHOOK_DURATION, 1,000 conversations, 2 agents; ms"
		echo "store | round | webhook | chat achieved/s | lost | v->a p50 / p99 | a->v p50 / p99 | deliveries/s | lag p50 / p99 / max | dup / missing / out-of-order | attempts ok / retry / failed | server cores | tool cores | CPU stall % | load avg before"
		for store in $WEBHOOK_STORES; do
			for round in $(seq "$WEBHOOK_ROUNDS"); do
				for kind in base hook; do
					local f="$DIR/webhook-$store-$round-$kind.json"
					if [ -s "$f" ]; then
						echo "$store | $round | $([ $kind = hook ] && echo yes || echo no) | $(webhook_row "$f")"
					else
						echo "$store | $round | $kind | (no summary)"
					fi
				done
			done
			echo "$store: $(webhook_ratio "$store")"
		done
	} | tee -a "$DIR/webhook.txt"
}

case "${1:-all}" in
restart)
	[ $# -eq 2 ] || die "usage: $0 restart A|B"
	restart "$2"
	exit 0
	;;
stop)
	stop_all
	exit 0
	;;
esac

steps=("$@")
if [ ${#steps[@]} -eq 0 ] || [ "${steps[0]}" = all ]; then
	steps=(latency storm chatpath connect webhook)
fi
mkdir -p "$DIR/A" "$DIR/B"
trap stop_all EXIT
build
for s in "${steps[@]}"; do
	case $s in
	latency | storm | chatpath | connect | webhook) "step_$s" ;;
	*) die "unknown step $s (latency, storm, chatpath, connect, webhook)" ;;
	esac
done
log "done; summaries in $DIR/*.txt"
