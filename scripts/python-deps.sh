#!/bin/sh
# make demo's system part: a Python 3.10+ that can make a virtual environment (venv and ensurepip;
# on Debian the python3.X-venv package), installed with apt-get as root when missing.
# Usage: sh scripts/python-deps.sh [PYTHON]    (default python3)
set -eu
PYTHON=${1:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "python-deps: $PYTHON not found: Clockwork needs Python 3.10 or newer (Debian: apt-get install python3)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
    echo "python-deps: $("$PYTHON" --version 2>&1) is too old: Clockwork needs Python 3.10 or newer" >&2
    exit 1
fi
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 && exit 0
package=$("$PYTHON" -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "python-deps: $PYTHON cannot make a virtual environment (no ensurepip): install $package" \
         "(as root: apt-get install $package), then run make again" >&2
    exit 1
fi
echo "python-deps: installing $package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$package" >/dev/null
