#!/usr/bin/env bash
# A team's stack on this machine, for trying and testing cdrexp against real servers:
#   PostgreSQL          MLflow's backend store (runs, params, metrics)
#   S3 API (moto)       a bucket: MLflow's artifacts, and cdrexp's out=s3://... data
#   mlflow server       tracking server on both, with HTTP basic authentication
#   SLURM (one node)    munge + MariaDB + slurmdbd + slurmctld + slurmd, for
#                       hydra/launcher=slurm (submitit reads job states from sacct)
#
# Idempotent: a component that answers already is left alone. Prints the environment to
# use as `export NAME=value` lines on stdout (eval "$(deploy/local/up.sh)"); progress
# and problems go to stderr, a missing component as one line naming it and its install.
# State, logs, secrets and pids live under $CDREXP_STACK_DIR (default below); down.sh
# stops exactly the processes recorded there. Exit 0: all up; 3: some part missing
# (the others are up and exported); 1: a part failed to start (its log is named).
# docs/team.md says what each part is for and what changes on real infrastructure.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=deploy/local/_common.sh
. "$HERE/_common.sh"

PG_PORT=${CDREXP_PG_PORT:-55432}
S3_PORT=${CDREXP_S3_PORT:-59000}
MLFLOW_PORT=${CDREXP_MLFLOW_PORT:-55000}
DB_PORT=${CDREXP_SLURMDB_PORT:-53306}
SLURMCTLD_PORT=${CDREXP_SLURMCTLD_PORT:-56817}
SLURMD_PORT=${CDREXP_SLURMD_PORT:-56818}
SLURMDBD_PORT=${CDREXP_SLURMDBD_PORT:-56819}
BUCKET=${CDREXP_BUCKET:-cdrexp}
ONLY=${CDREXP_STACK_ONLY:-postgres s3 mlflow slurm}   # a subset, e.g. "postgres s3 mlflow"

PY=${CDREXP_PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; else PY=$(command -v python3); fi
fi
PYBIN=$(dirname "$PY")

mkdir -p "$STACK/pids" "$STACK/logs"
chmod 755 "$STACK"
missing=0
failed=0
EXPORTS=()

say() { echo "cdrexp-stack: $*" >&2; }
missing_part() { say "missing: $1"; missing=1; }
failed_part() { say "FAILED: $1"; failed=1; }
wanted() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# secrets: generated once, kept 0600 in the stack directory
SECRETS="$STACK/secrets.env"
if [ ! -f "$SECRETS" ]; then
    umask 077
    {
        echo "PG_PASSWORD=$(rand_token)"
        echo "MLFLOW_ADMIN_PASSWORD=$(rand_token)"
        echo "SLURMDB_PASSWORD=$(rand_token)"
    } > "$SECRETS"
    umask 022
fi
grep -q '^MLFLOW_SECRET_KEY=' "$SECRETS" || echo "MLFLOW_SECRET_KEY=$(rand_token)" >> "$SECRETS"
# shellcheck disable=SC1090
. "$SECRETS"

# run a command as a service user when we are root (PostgreSQL and MariaDB refuse root)
as_user() {
    local user=$1; shift
    if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}
service_user() { if [ "$(id -u)" = 0 ]; then echo "$1"; else id -un; fi; }

# ------------------------------------------------------------------ PostgreSQL
start_postgres() {
    local bindir
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        missing_part "postgres (PostgreSQL server): apt-get install postgresql (or deploy/local/install.sh)"
        return
    fi
    local user data run
    user=$(service_user postgres)
    data="$STACK/postgres/data"; run="$STACK/postgres/run"
    mkdir -p "$STACK/postgres" "$run"
    chown "$user" "$STACK/postgres" "$run" 2>/dev/null
    if [ ! -f "$data/PG_VERSION" ]; then
        local pw="$STACK/postgres/.pw"
        (umask 077; echo "$PG_PASSWORD" > "$pw"); chown "$user" "$pw" 2>/dev/null
        as_user "$user" "$bindir/initdb" -D "$data" -U cdrexp --pwfile="$pw" \
            --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 \
            > "$STACK/logs/postgres-initdb.log" 2>&1 \
            || { rm -f "$pw"; failed_part "postgres: initdb (see $STACK/logs/postgres-initdb.log)"; return; }
        rm -f "$pw"
    fi
    if ! alive postgres; then
        as_user "$user" "$bindir/pg_ctl" -D "$data" -l "$STACK/postgres/postgres.log" -w -t 60 \
            -o "-p $PG_PORT -h 127.0.0.1 -k $run" start > /dev/null 2>&1 \
            || { failed_part "postgres: did not start (see $STACK/postgres/postgres.log)"; return; }
        record postgres "$(head -1 "$data/postmaster.pid")"
    fi
    export PGPASSWORD=$PG_PASSWORD
    wait_for "postgres" 60 "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || return
    if ! "$bindir/psql" -h 127.0.0.1 -p "$PG_PORT" -U cdrexp -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname='mlflow'" | grep -q 1; then
        "$bindir/createdb" -h 127.0.0.1 -p "$PG_PORT" -U cdrexp mlflow \
            || { failed_part "postgres: createdb mlflow"; return; }
    fi
    PG_URI="postgresql+psycopg2://cdrexp:$PG_PASSWORD@127.0.0.1:$PG_PORT/mlflow"
    EXPORTS+=("CDREXP_STACK_PG_URI=$PG_URI")
}

# ------------------------------------------------------------------ S3 (moto server)
start_s3() {
    if [ ! -x "$PYBIN/moto_server" ]; then
        missing_part "s3 (moto server, $PYBIN/moto_server): pip install 'moto[server]' (or deploy/local/install.sh)"
        return
    fi
    local fresh=0
    if ! alive s3; then
        # every request is authenticated (IAM) after the first 3, which create our user
        ( cd "$STACK" && INITIAL_NO_AUTH_ACTION_COUNT=3 exec "$PYBIN/moto_server" \
            -H 127.0.0.1 -p "$S3_PORT" > "$STACK/logs/s3.log" 2>&1 ) &
        record s3 $!
        fresh=1
    fi
    wait_for "s3" 30 curl -m 5 -sf -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/" || return
    if [ $fresh = 1 ] || [ ! -f "$STACK/s3.env" ]; then
        # moto keeps everything in memory: a new server needs its user, key and bucket
        (umask 077; "$PY" "$HERE/_s3_setup.py" "http://127.0.0.1:$S3_PORT" "$BUCKET" \
            > "$STACK/s3.env.tmp" 2> "$STACK/logs/s3-setup.log") \
            || { failed_part "s3: creating the user and bucket (see $STACK/logs/s3-setup.log)"; return; }
        mv "$STACK/s3.env.tmp" "$STACK/s3.env"
    fi
    # shellcheck disable=SC1090
    . "$STACK/s3.env"
    EXPORTS+=("AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
              "AWS_DEFAULT_REGION=us-east-1" "AWS_ENDPOINT_URL_S3=http://127.0.0.1:$S3_PORT"
              "MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT"
              "FSSPEC_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT"
              "CDREXP_STACK_BUCKET=$BUCKET")
    S3_UP=1
}

# ------------------------------------------------------------------ MLflow server
start_mlflow() {
    if [ ! -x "$PYBIN/mlflow" ]; then
        missing_part "mlflow (tracking server, $PYBIN/mlflow): pip install -e '.[team]' (or deploy/local/install.sh)"
        return
    fi
    if [ -z "${PG_URI:-}" ] || [ -z "${S3_UP:-}" ]; then
        missing_part "mlflow (tracking server): needs postgres and s3 up first"
        return
    fi
    if ! "$PY" -c "import flask_wtf, psycopg2, boto3" 2>/dev/null; then
        missing_part "mlflow (tracking server: Flask-WTF, psycopg2, boto3): pip install -e '.[team]' (or deploy/local/install.sh)"
        return
    fi
    mkdir -p "$STACK/mlflow"
    # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no Huey job consumers (7 processes, ~25 s
    # of CPU to start, for MLflow's GenAI jobs, which nothing here uses).
    # auth_cache_ttl_seconds: without it the server checks the password's scrypt hash on
    # every request (~0.1 s of CPU each, and a run makes dozens); with it, a user:password
    # that passed is remembered for 5 minutes (keyed by an HMAC of it, in the server's
    # memory; a changed password takes effect at once; a wrong one is never remembered)
    local ini="$STACK/mlflow/basic_auth.ini"
    (umask 077; cat > "$ini" <<EOF
[mlflow]
default_permission = READ
database_uri = sqlite:///$STACK/mlflow/basic_auth.db
admin_username = cdrexp
admin_password = $MLFLOW_ADMIN_PASSWORD
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 300
EOF
)
    if ! alive mlflow; then
        ( cd "$STACK/mlflow" && \
          MLFLOW_AUTH_CONFIG_PATH="$ini" MLFLOW_FLASK_SERVER_SECRET_KEY="$MLFLOW_SECRET_KEY" \
          MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
          MLFLOW_S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" \
          AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
          AWS_DEFAULT_REGION=us-east-1 \
          exec "$PYBIN/mlflow" server --app-name basic-auth \
            --backend-store-uri "postgresql+psycopg2://cdrexp:$PG_PASSWORD@127.0.0.1:$PG_PORT/mlflow" \
            --artifacts-destination "s3://$BUCKET/mlflow-artifacts" \
            --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 2 \
            > "$STACK/logs/mlflow.log" 2>&1 ) &
        record mlflow $!
    fi
    # MLflow migrates a new PostgreSQL database on its first start: tens of seconds
    wait_for "mlflow" 180 curl -m 5 -sf -o /dev/null "http://127.0.0.1:$MLFLOW_PORT/health" || return
    EXPORTS+=("MLFLOW_TRACKING_URI=http://cdrexp:$MLFLOW_ADMIN_PASSWORD@127.0.0.1:$MLFLOW_PORT"
              "CDREXP_STACK_MLFLOW_URL=http://127.0.0.1:$MLFLOW_PORT"
              "MLFLOW_TRACKING_USERNAME=cdrexp" "MLFLOW_TRACKING_PASSWORD=$MLFLOW_ADMIN_PASSWORD"
              # clients download artifacts through the server: moto's authenticated
              # mode rejects the presigned URLs MLflow would otherwise hand out (real S3
              # accepts them; leave these unset there)
              "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD=false"
              "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false")
}

# ------------------------------------------------------------------ SLURM (one node)
start_slurm() {
    local b
    for b in munged slurmctld slurmd slurmdbd mariadbd mariadb-install-db sbatch sacct; do
        if ! command -v "$b" >/dev/null && [ ! -x "/usr/sbin/$b" ]; then
            missing_part "slurm ($b not found): apt-get install slurm-wlm slurmdbd munge mariadb-server (or deploy/local/install.sh)"
            return
        fi
    done
    if [ "$(id -u)" != 0 ]; then
        missing_part "slurm (slurmd runs jobs as their users: run up.sh as root)"
        return
    fi
    export PATH="$PATH:/usr/sbin"
    local S="$STACK/slurm" M="$STACK/munge" D="$STACK/slurmdb"
    local node cpus mem_mb
    node=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p "$S/spool" "$S/state" "$M" "$D"
    chmod 700 "$M"
    # munge: the credential service slurm's daemons and commands authenticate with. On
    # its standard socket (slurm's commands do not all honour AuthInfo=socket=...): a
    # munged already answering there (the system's) is used as it is, and not ours to stop
    local sock=/run/munge/munge.socket.2
    # (a socket already there but slow to answer is another munged: never start a second
    # one on the same path, whose exit would remove the first one's socket)
    [ -S "$sock" ] && ! alive munge && wait_for "munge" 20 bash -c "munge -n -s $sock | unmunge -s $sock"
    if ! alive munge && [ ! -S "$sock" ]; then
        [ -f "$M/munge.key" ] || mungekey --create --keyfile="$M/munge.key" >/dev/null 2>&1 \
            || dd if=/dev/urandom of="$M/munge.key" bs=1024 count=1 2>/dev/null
        chmod 600 "$M/munge.key"
        mkdir -p /run/munge
        munged --force --key-file="$M/munge.key" --socket="$sock" \
            --pid-file="$M/munged.pid" --log-file="$STACK/logs/munged.log" \
            --seed-file="$M/munged.seed" > /dev/null 2>> "$STACK/logs/munged.log" \
            || { failed_part "slurm: munged did not start (see $STACK/logs/munged.log)"; return; }
        wait_file "$M/munged.pid" 10 && record munge "$(cat "$M/munged.pid")"
    fi
    # MariaDB for slurmdbd: SLURM's job accounting, which sacct (and so submitit) reads
    if [ ! -d "$D/data/mysql" ]; then
        mkdir -p "$D/data"; chown mysql "$D" "$D/data"
        mariadb-install-db --datadir="$D/data" --user=mysql --auth-root-authentication-method=normal \
            --skip-test-db > "$STACK/logs/slurmdb-init.log" 2>&1 \
            || { failed_part "slurm: mariadb-install-db (see $STACK/logs/slurmdb-init.log)"; return; }
    fi
    if ! alive slurmdb; then
        chown mysql "$D" "$D/data"
        ( exec mariadbd --no-defaults --datadir="$D/data" --socket="$D/mysqld.sock" \
            --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$D/mysqld.pid" \
            --user=mysql --log-error="$D/mariadb.log" --innodb-buffer-pool-size=64M \
            > /dev/null 2>&1 ) &
        record slurmdb $!
    fi
    wait_for "slurm accounting database" 60 timeout 5 mariadb --no-defaults --socket="$D/mysqld.sock" \
        -uroot -e "SELECT 1" || return
    mariadb --no-defaults --socket="$D/mysqld.sock" -uroot -e \
        "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$SLURMDB_PASSWORD';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
        || { failed_part "slurm: creating the accounting database user"; return; }
    (umask 077; cat > "$S/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$SLURMDBD_PORT
SlurmUser=root
PidFile=$S/slurmdbd.pid
LogFile=$STACK/logs/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$SLURMDB_PASSWORD
StorageLoc=slurm_acct_db
EOF
)
    cat > "$S/slurm.conf" <<EOF
# generated by deploy/local/up.sh for this host ($node): one node, every core, jobs
# one after another when they ask for the whole node (the timed presets do)
ClusterName=cdrexp
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$STACK/logs/slurmctld.log
SlurmdLogFile=$STACK/logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$SLURMDBD_PORT
JobCompType=jobcomp/none
KillWait=5
MinJobAge=300
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=cdrexp Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$S/slurm.conf"
    if ! alive slurmdbd; then
        slurmdbd > /dev/null 2>&1 || { failed_part "slurm: slurmdbd did not start (see $STACK/logs/slurmdbd.log)"; return; }
        wait_file "$S/slurmdbd.pid" 20 && record slurmdbd "$(cat "$S/slurmdbd.pid")"
    fi
    wait_for "slurmdbd" 60 timeout 10 sacctmgr -n list cluster || return
    sacctmgr -i -Q add cluster cdrexp >/dev/null 2>&1 || true
    if ! alive slurmctld; then
        slurmctld -f "$S/slurm.conf" > /dev/null 2>&1 \
            || { failed_part "slurm: slurmctld did not start (see $STACK/logs/slurmctld.log)"; return; }
        wait_file "$S/slurmctld.pid" 20 && record slurmctld "$(cat "$S/slurmctld.pid")"
    fi
    if ! alive slurmd; then
        slurmd -f "$S/slurm.conf" -N "$node" > /dev/null 2>&1 \
            || { failed_part "slurm: slurmd did not start (see $STACK/logs/slurmd.log)"; return; }
        wait_file "$S/slurmd.pid" 20 && record slurmd "$(cat "$S/slurmd.pid")"
    fi
    wait_for "slurm node" 60 bash -c "timeout 10 sinfo -h -N -o %T | grep -Eq '^(idle|mixed|allocated)'" || {
        scontrol update nodename="$node" state=resume >/dev/null 2>&1
        wait_for "slurm node" 30 bash -c "timeout 10 sinfo -h -N -o %T | grep -Eq '^(idle|mixed|allocated)'" || return
    }
    EXPORTS+=("SLURM_CONF=$S/slurm.conf" "CDREXP_SLURM_CPUS_PER_TASK=$cpus"
              "CDREXP_SLURM_MEM_GB=$(( mem_mb / 1024 ))")
}

for part in postgres s3 mlflow slurm; do
    wanted "$part" && "start_$part"
done

for line in "${EXPORTS[@]}"; do
    printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
done
printf 'export CDREXP_STACK_DIR=%q\n' "$STACK"
[ $failed = 1 ] && exit 1
[ $missing = 1 ] && exit 3
say "up: $ONLY (state in $STACK; stop with deploy/local/down.sh)"
exit 0
