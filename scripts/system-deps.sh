#!/bin/sh
# Install the system parts the tests need, when missing (Debian, as root):
#   openssh-server   /usr/sbin/sshd, one per fleet host
#   docker.io        dockerd (the first on PATH, else /usr/sbin/dockerd: testsupport/fleet.py looks the same way)
#                    and the docker client
#   busybox-static   a statically linked /bin/busybox: the test image holds only busybox, no libc
#                    (Debian's busybox package is dynamically linked; busybox-static replaces it)
#   locales          localedef and the locale sources, to build the de_DE locale a test runs under
#   curl, wget       the HTTP clients the health checks use on the hosts
#   mmdebstrap       builds the root test hosts' Debian image (testsupport/roothosts.py), once per machine
#   netcat-openbsd   nc: the ssh ProxyCommand into each root host's own network namespace
#   apt-utils        apt-ftparchive, which indexes the root hosts' local apt repository
#   dpkg-dev, openssh-client  dpkg-deb builds that repository's packages; ssh logs in to the root hosts
#   postgresql       initdb and postgres under /usr/lib/postgresql/<version>/bin (any version: testsupport/postgres.py
#                    takes the newest), for the PostgreSQL state backend's tests
#   prometheus-alertmanager  a real Alertmanager (testsupport/alertmanager.py) for the alert channel's tests
# Safe to run again: it installs nothing when everything is there. The paths can be
# overridden (SSHD, DOCKERD, BUSYBOX, LOCALES, NC, POSTGRES_LIB) to check another layout.
set -eu
SSHD=${SSHD:-/usr/sbin/sshd}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
BUSYBOX=${BUSYBOX:-/bin/busybox}
LOCALES=${LOCALES:-/usr/share/i18n/locales}
NC=${NC:-/bin/nc}
POSTGRES_LIB=${POSTGRES_LIB:-/usr/lib/postgresql}
missing=""
need() {
    case " $missing " in *" $1 "*) ;; *) missing="$missing $1" ;; esac
}
has() {
    command -v "$1" >/dev/null 2>&1
}
postgres_installed() {  # some version's initdb
    for initdb in "$POSTGRES_LIB"/*/bin/initdb; do
        [ -x "$initdb" ] && return 0
    done
    return 1
}
dynamic() {  # an executable that names shared libraries ("=>" lines) is dynamically linked
    ldd "$1" 2>/dev/null | grep -q "=>"
}
[ -x "$SSHD" ] || need openssh-server
has dockerd || [ -x "$DOCKERD" ] || need docker.io
has docker || need docker.io
if [ ! -x "$BUSYBOX" ] || dynamic "$BUSYBOX"; then
    need busybox-static
fi
{ has localedef && [ -f "$LOCALES/de_DE" ]; } || need locales
has curl || need curl
has wget || need wget
has mmdebstrap || need mmdebstrap
[ -x "$NC" ] || need netcat-openbsd
has apt-ftparchive || need apt-utils
has dpkg-deb || need dpkg-dev
{ has ssh && has ssh-keygen; } || need openssh-client
postgres_installed || need postgresql
has prometheus-alertmanager || need prometheus-alertmanager
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
