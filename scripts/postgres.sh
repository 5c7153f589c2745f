#!/usr/bin/env bash
# postgres.sh makes sure a PostgreSQL server answers for the tests and
# prints a URL for it, usable by pgx, as the last line of its output:
#
#   postgres://postgres@127.0.0.1:5432/test?sslmode=disable
#
# It tries, in order:
#   1. MICROCHAT_TEST_DATABASE_URL, if set: checked, then printed as is;
#   2. a server on 127.0.0.1:5432 that lets user postgres in without a
#      password (database "test" is created if missing);
#   3. a stopped Debian cluster (/etc/postgresql/VERSION/main): started;
#   4. a throwaway cluster of its own, with trust authentication, in
#      ${TMPDIR:-/tmp}/microchat-test-postgres on a free port, installing
#      the postgresql package with apt-get first if needed. It is reused by
#      the next run and stopped with the command printed when it starts.
#
# Progress goes to standard error. Run as root on a fresh Debian machine it
# needs nothing but the Debian mirrors.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

die() {
	log "$*"
	log "fix: start a PostgreSQL server that lets user postgres connect over TCP without a password,"
	log "     install one (apt-get install postgresql, as root) and run this script again,"
	log "     or set MICROCHAT_TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=disable"
	exit 1
}

# answers HOST PORT [URL]: whether a PostgreSQL server (or at least
# something) accepts connections there.
answers() {
	local host=$1 port=$2 url=${3:-}
	if command -v pg_isready >/dev/null; then
		if [ -n "$url" ]; then
			pg_isready -q -t 5 -d "$url"
		else
			pg_isready -q -t 5 -h "$host" -p "$port"
		fi
	else
		timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
	fi
}

# wait_for HOST PORT SECONDS: waits until the server answers.
wait_for() {
	local host=$1 port=$2 i
	for ((i = 0; i < $3; i++)); do
		if answers "$host" "$port"; then
			return 0
		fi
		sleep 1
	done
	return 1
}

# ensure_test_db PSQL PORT: creates database "test" on 127.0.0.1:PORT as
# user postgres unless it exists. Fails if user postgres cannot get in
# without a password.
ensure_test_db() {
	local psql=$1 port=$2
	local -a q=("$psql" -X -w -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)
	local have
	have=$(PGCONNECT_TIMEOUT=5 "${q[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>&1) || {
		log "cannot log in as postgres on 127.0.0.1:$port without a password: $have"
		return 1
	}
	if [ "$have" != 1 ]; then
		log "creating database test on 127.0.0.1:$port"
		PGCONNECT_TIMEOUT=5 "${q[@]}" -c "CREATE DATABASE test" >&2 || return 1
	fi
}

url_for() { echo "postgres://postgres@127.0.0.1:$1/test?sslmode=disable"; }

# 1. A URL given by the caller is used as it is, or not at all.
if [ -n "${MICROCHAT_TEST_DATABASE_URL:-}" ]; then
	url=$MICROCHAT_TEST_DATABASE_URL
	re='^postgres(ql)?://([^@/]*@)?(\[[^]]*\]|[^:/?]*)(:([0-9]+))?'
	if ! [[ $url =~ $re ]]; then
		die "MICROCHAT_TEST_DATABASE_URL is not a postgres:// URL"
	fi
	host=${BASH_REMATCH[3]:-localhost}
	host=${host#[}
	host=${host%]}
	port=${BASH_REMATCH[5]:-5432}
	log "checking MICROCHAT_TEST_DATABASE_URL ($host:$port)"
	if ! answers "$host" "$port" "$url"; then
		die "MICROCHAT_TEST_DATABASE_URL is set but no server answers at $host:$port"
	fi
	echo "$url"
	exit 0
fi

# 2. A server already running on the standard port.
if answers 127.0.0.1 5432; then
	log "a server answers on 127.0.0.1:5432"
	if ! command -v psql >/dev/null; then
		log "no psql to create database test: using database postgres"
		echo "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
		exit 0
	fi
	if ensure_test_db psql 5432; then
		url_for 5432
		exit 0
	fi
	log "not usable for the tests; trying a cluster of our own"
fi

# 3. A Debian cluster that is not running.
if ! answers 127.0.0.1 5432 && [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
	version=$(ls /etc/postgresql | sort -V | tail -n 1)
	if [ -n "$version" ] && [ -d "/etc/postgresql/$version/main" ]; then
		conf_port=$(sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "/etc/postgresql/$version/main/postgresql.conf" | tail -n 1)
		conf_port=${conf_port:-5432}
		log "starting Debian cluster $version/main (port $conf_port)"
		if pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 && wait_for 127.0.0.1 "$conf_port" 30; then
			if ensure_test_db psql "$conf_port"; then
				url_for "$conf_port"
				exit 0
			fi
			log "cluster $version/main is running but not usable for the tests; trying a cluster of our own"
		else
			log "cluster $version/main did not start"
		fi
	fi
fi

# 4. A throwaway cluster of our own.
find_bin() {
	local dir
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		# Follow symlinks to the directory that also has psql.
		dirname "$(readlink -f "$(command -v initdb)")"
		return 0
	fi
	dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
		echo "$dir"
		return 0
	fi
	return 1
}

if ! bin=$(find_bin); then
	if [ "$(id -u)" != 0 ]; then
		die "PostgreSQL is not installed and installing it needs root"
	fi
	log "installing PostgreSQL with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2 || die "apt-get update failed"
	apt-get install -y postgresql >&2 || die "apt-get install postgresql failed"
	bin=$(find_bin) || die "no initdb found after installing postgresql"
fi

psql=$bin/psql
if [ ! -x "$psql" ]; then
	psql=$(command -v psql) || die "no psql next to $bin/initdb"
fi

base=${TMPDIR:-/tmp}/microchat-test-postgres
data=$base/data

# as_owner CMD...: runs CMD as the owner of the cluster: postgres when we
# are root (initdb refuses root), else ourselves.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		if command -v runuser >/dev/null; then
			runuser -u postgres -- "$@"
		else
			su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
		fi
	else
		"$@"
	fi
}

if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
	log "creating system user postgres"
	useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# Reuse the cluster of an earlier run if it still answers.
if [ -f "$base/port" ]; then
	port=$(cat "$base/port")
	if answers 127.0.0.1 "$port" && ensure_test_db "$psql" "$port"; then
		log "reusing the test cluster in $base on port $port"
		url_for "$port"
		exit 0
	fi
fi

port=
for p in $(seq 5433 5532); do
	if ! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then
		port=$p
		break
	fi
done
[ -n "$port" ] || die "no free port between 5433 and 5532"

mkdir -p "$base"
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$base"
fi
chmod 700 "$base"
if [ ! -f "$data/PG_VERSION" ]; then
	log "creating a throwaway cluster in $data"
	rm -rf "$data"
	as_owner "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$base/initdb.log" 2>&1 ||
		die "initdb failed, see $base/initdb.log"
fi
# A cluster left behind by a killed run has a stale postmaster.pid; pg_ctl
# copes with it, but not with a server still running on another port.
as_owner "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
log "starting it on 127.0.0.1:$port"
as_owner "$bin/pg_ctl" -D "$data" -l "$base/server.log" -w -t 30 \
	-o "-k $base -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
	start >&2 || die "the throwaway cluster did not start, see $base/server.log"
echo "$port" >"$base/port"
ensure_test_db "$psql" "$port" || die "cannot create database test in the throwaway cluster"
log "stop it with: $( [ "$(id -u)" = 0 ] && echo 'runuser -u postgres -- ')$bin/pg_ctl -D $data stop"
url_for "$port"
