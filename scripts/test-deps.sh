#!/usr/bin/env bash
# test-deps.sh installs what the tests need beyond Go, from Debian:
#
#   - chromium, which the browser tests (web/browsertest) drive;
#   - dovecot-imapd, the real IMAP server the email tests start as an
#     unprivileged instance of their own (channels/email/emailtest);
#   - nginx, which deploy's tests run with the example
#     configuration (deploy/nginx) in front of stub nodes;
#   - nodejs and npm, and with npm the packages in microchat_npm_packages
#     (the Standard Webhooks library that webhook's tests verify
#     signatures with, as a receiver in Node does), installed with
#     --no-save into MICROCHAT_TEST_NODE, by default
#     ${XDG_CACHE_HOME:-$HOME/.cache}/microchat-test/node, where the
#     tests look for them. That step needs no root.
#
# scripts/test.sh sources it; it can also be run on its own. It works as
# root on Debian; as another user it says what to install. It prints
# nothing when everything is installed.
#
# Installing dovecot-imapd must not leave the system's Dovecot running
# (it would hold ports 143 and 993 with /etc/dovecot's config, which no
# test uses): services are kept from starting during the install with a
# policy-rc.d (invoke-rc.d's, see /usr/share/doc/init-system-helpers/
# README.policy-rc.d), and one that runs anyway is stopped.

microchat_test_deps() {
	local missing=()
	[ -x /usr/bin/chromium ] || missing+=(chromium)
	[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
	[ -x /usr/sbin/nginx ] || missing+=(nginx)
	command -v node >/dev/null || missing+=(nodejs)
	command -v npm >/dev/null || missing+=(npm)
	if [ ${#missing[@]} -eq 0 ]; then
		microchat_stop_system_dovecot
		microchat_npm_deps
		return
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "test-deps.sh: the tests need ${missing[*]}: run as root, or apt-get install ${missing[*]}" >&2
		return 1
	fi
	echo "==> installing ${missing[*]} for the tests" >&2

	# Deny every service start while installing, unless the machine has a
	# policy of its own already (containers usually do: exit 101).
	local policy=/usr/sbin/policy-rc.d ours=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# scripts/test-deps.sh: no service starts while installing\nexit 101\n' >"$policy" &&
			chmod 755 "$policy" && ours=1
	fi
	local rc=0
	# The lock timeout waits for another apt (a parallel job) instead of failing.
	apt-get -o DPkg::Lock::Timeout=300 update >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
			install -y "${missing[@]}" >&2 || rc=$?
	if [ "$ours" = 1 ]; then
		rm -f "$policy"
	fi
	microchat_stop_system_dovecot
	[ "$rc" = 0 ] || return $rc
	microchat_npm_deps
}

# microchat_npm_packages are the npm packages the tests run with node, at
# the versions they were written against.
microchat_npm_packages=(standardwebhooks@1.1.1)

# microchat_npm_deps installs microchat_npm_packages into the tests' node
# directory, unless each is there at its version already. It installs
# them all at once: an install with --no-save removes what it was not
# told to install.
microchat_npm_deps() {
	local dir=${MICROCHAT_TEST_NODE:-${XDG_CACHE_HOME:-$HOME/.cache}/microchat-test/node}
	local missing=() pkg
	for pkg in "${microchat_npm_packages[@]}"; do
		[ "$(microchat_npm_version "$dir" "${pkg%@*}")" = "${pkg##*@}" ] || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "==> installing ${microchat_npm_packages[*]} for the tests into $dir" >&2
	mkdir -p "$dir" &&
		npm install --prefix "$dir" --no-save --no-audit --no-fund --no-update-notifier "${microchat_npm_packages[@]}" >&2
}

# microchat_npm_version prints the version of the npm package $2 installed
# in $1, or nothing.
microchat_npm_version() {
	local manifest=$1/node_modules/$2/package.json
	[ -f "$manifest" ] || return 0
	node -p 'require(process.argv[1]).version' "$manifest" 2>/dev/null || true
}

# microchat_stop_system_dovecot stops a Dovecot started with the system's
# config (its master writes /run/dovecot/master.pid), whatever started it.
# The tests' own instances live in their temporary directories and are
# left alone.
microchat_stop_system_dovecot() {
	[ -x /usr/sbin/dovecot ] || return 0
	[ -s /run/dovecot/master.pid ] || return 0
	kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null || return 0
	echo "==> stopping the system's Dovecot (the tests start their own)" >&2
	service dovecot stop >&2 || /usr/sbin/dovecot stop >&2 || true
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	microchat_test_deps
else
	microchat_test_deps || return 1
fi
