#!/usr/bin/env bash
# Installs what deploy/local/up.sh starts: Debian's PostgreSQL, SLURM (slurm-wlm,
# slurmdbd, munge) and MariaDB (SLURM's accounting database), as root; and the team
# extra into the project's venv (s3fs, boto3, moto's S3 server, psycopg2, MLflow's
# auth app, hydra-submitit-launcher). Each part that cannot be installed is one line,
# and up.sh then reports that component missing (its tests skip, saying so).
#   deploy/local/install.sh            # both
#   deploy/local/install.sh --python   # only the Python packages (no root needed)
#   deploy/local/install.sh --debs     # only the Debian packages (.ci/run installs them
#                                      # while pip fills the venv)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${CDREXP_PYTHON:-$REPO/.venv/bin/python}
DEBS="postgresql slurm-wlm slurmdbd munge mariadb-server"
rc=0

case "${1:-}" in
    ""|--python|--debs) ;;
    *) echo "cdrexp-install: unknown option '$1' (expected --python, --debs or nothing)" >&2; exit 2 ;;
esac

if [ "${1:-}" != "--python" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "cdrexp-install: Debian packages not installed (needs root and apt-get): $DEBS" >&2
        rc=3
    else
        export DEBIAN_FRONTEND=noninteractive
        apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $DEBS >/dev/null 2>&1; }
        # the packages' scripts must not start system-wide services: up.sh starts its own
        policy=/usr/sbin/policy-rc.d; made_policy=0
        if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; made_policy=1; fi
        apt_install || { apt-get update -q >/dev/null 2>&1 && apt_install; } \
            || { echo "cdrexp-install: apt-get install $DEBS failed" >&2; rc=3; }
        [ $made_policy = 1 ] && rm -f $policy
    fi
fi

[ "${1:-}" = "--debs" ] && exit $rc

# s3fs first: it pins botocore (through aiobotocore); boto3 and moto then get that one.
# uv when the venv has it (the README's set-up puts it there): seconds where pip takes minutes
UV="$(dirname "$PY")/uv"
# bytecode compiled at install, as pip does (uv does not unless told; README's set-up)
if [ -x "$UV" ]; then pip_install() { "$UV" pip install -q -p "$PY" --compile-bytecode "$@"; }
else pip_install() { "$PY" -m pip install -q "$@"; }
fi
if ! pip_install s3fs 2>/dev/null \
    || ! pip_install -e "$REPO[team]" \
        "botocore==$("$PY" -c 'import botocore; print(botocore.__version__)')" 2>/dev/null; then
    echo "cdrexp-install: pip install -e '.[team]' failed" >&2
    rc=3
fi
exit $rc
