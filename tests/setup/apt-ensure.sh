#!/usr/bin/env bash
# Install Debian packages the tests need (redis-server, chromium) when a
# command of theirs is missing; a quick no-op when all are present.
#   tests/setup/apt-ensure.sh COMMAND=PACKAGE ...
# e.g. tests/setup/apt-ensure.sh redis-server=redis-server chromium=chromium
# Needs root (CI and the developers' machines run as root) or sudo.
set -euo pipefail
missing=()
for pair in "$@"; do
  cmd=${pair%%=*}
  pkg=${pair#*=}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
echo "installing Debian packages: ${missing[*]}" >&2
# Wait for another apt/dpkg run rather than failing on its lock.
APT=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get "${APT[@]}" update -qq
$SUDO apt-get "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package's own service is not what the tests use (they start their own on
# a free port); stop it when the install started one, so no stray server listens.
if command -v service >/dev/null 2>&1 && [[ " ${missing[*]} " == *" redis-server "* ]]; then
  $SUDO service redis-server stop >/dev/null 2>&1 || true
fi
