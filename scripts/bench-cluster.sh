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

# config NODE PORT DBURL: writes node NODE's config; DBURL empty is SQLite in
# the node's data directory (a fresh one).
config() {
	local node=$1 port=$2 db=$3
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

# start NODE PORT DBURL: a fresh node, ready.
start() {
	config "$1" "$2" "$3"
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
	steps=(latency storm chatpath connect)
fi
mkdir -p "$DIR/A" "$DIR/B"
trap stop_all EXIT
build
for s in "${steps[@]}"; do
	case $s in
	latency | storm | chatpath | connect) "step_$s" ;;
	*) die "unknown step $s (latency, storm, chatpath, connect)" ;;
	esac
done
log "done; summaries in $DIR/*.txt"
