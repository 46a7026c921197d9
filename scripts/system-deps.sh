#!/bin/sh
# Install the system parts the tests need (openssh-server, docker.io, busybox-static) when missing.
# Safe to run again: it installs nothing when everything is there.
set -eu
missing=""
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing="$missing docker.io"
[ -x /bin/busybox ] || missing="$missing busybox-static"
[ -n "$missing" ] || exit 0
if [ "$(id -u)" != 0 ]; then
    echo "system-deps: need root to install:$missing" >&2
    exit 1
fi
echo "system-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
