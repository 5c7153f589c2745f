#!/usr/bin/env bash
# test.sh runs every check of Microchat, the way CI does:
#
#   1. scripts/test-deps.sh, if it exists (extra test dependencies);
#   2. scripts/postgres.sh, so that the tests also run on PostgreSQL
#      (MICROCHAT_TEST_DATABASE_URL; MICROCHAT_REQUIRE_POSTGRES=1 makes
#      them fail rather than skip without it);
#   3. go vet ./...;
#   4. go test on every package, without cgo, as the binary is built;
#   5. go test -race on the packages with concurrency (inbox, web, channels,
#      sockets, presence, internal, webhook), which needs cgo and a C compiler
#      (installed with apt-get when root).
#
# Arguments go to both go test runs: scripts/test.sh -run TestJoin -v.
# Packages among them (./config/) replace ./... . MICROCHAT_NO_RACE=1 skips
# step 5.
#
# It works on a fresh Debian 12 machine as root with only Go installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { echo "==> $*" >&2; }

run() {
	step "$*"
	"$@"
}

if [ -f scripts/test-deps.sh ]; then
	step "source scripts/test-deps.sh"
	# shellcheck source=/dev/null
	source scripts/test-deps.sh
fi

step "scripts/postgres.sh"
MICROCHAT_TEST_DATABASE_URL=$(scripts/postgres.sh | tail -n 1)
export MICROCHAT_TEST_DATABASE_URL
export MICROCHAT_REQUIRE_POSTGRES=1
step "MICROCHAT_TEST_DATABASE_URL=$MICROCHAT_TEST_DATABASE_URL"

# Packages given as arguments replace ./... for every step.
user_pkgs=()
for arg in "$@"; do
	case $arg in
	./* | ../* | github.com/microdeets/microchat*) user_pkgs+=("$arg") ;;
	esac
done
if [ ${#user_pkgs[@]} -ne 0 ]; then
	vet_pkgs=("${user_pkgs[@]}")
	pkgs=()      # already in "$@"
	race_pkgs=() # likewise: the race pass runs on the packages given
else
	vet_pkgs=(./...)
	pkgs=(./...)
	race_pkgs=()
	for d in inbox web channels sockets presence internal webhook; do
		if [ -d "$d" ]; then
			race_pkgs+=("./$d/...")
		fi
	done
fi

run env CGO_ENABLED=0 go vet "${vet_pkgs[@]}"
run env CGO_ENABLED=0 go test -count=1 "$@" "${pkgs[@]}"

if [ "${MICROCHAT_NO_RACE:-}" = 1 ]; then
	step "skipping the race detector (MICROCHAT_NO_RACE=1)"
	exit 0
fi
if [ ${#user_pkgs[@]} -eq 0 ] && [ ${#race_pkgs[@]} -eq 0 ]; then
	step "no inbox/ or web/ yet: no race detector pass"
	exit 0
fi

if ! command -v "${CC:-gcc}" >/dev/null; then
	if [ "$(id -u)" != 0 ]; then
		echo "test.sh: the race detector needs a C compiler: install gcc, or set MICROCHAT_NO_RACE=1 to skip it" >&2
		exit 1
	fi
	step "installing gcc for the race detector"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	apt-get install -y gcc libc6-dev >&2
fi

run env CGO_ENABLED=1 go test -race -count=1 "$@" "${race_pkgs[@]}"
