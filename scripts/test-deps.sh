#!/usr/bin/env bash
# test-deps.sh installs what the tests need beyond Go: Debian's chromium,
# which the browser tests (web/browsertest) drive. scripts/test.sh sources
# it; it can also be run on its own. It works as root on Debian; as
# another user it says what to install.

microchat_test_deps() {
	if [ -x /usr/bin/chromium ]; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "test-deps.sh: the browser tests need /usr/bin/chromium: run as root, or apt-get install chromium" >&2
		return 1
	fi
	echo "==> installing chromium for the browser tests" >&2
	apt-get update >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	microchat_test_deps
else
	microchat_test_deps || return 1
fi
