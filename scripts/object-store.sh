#!/usr/bin/env bash
#
# object-store.sh - run REAL object storage servers on 127.0.0.1 for tests.
#
# trustyard's own copy of the shared services script (shared/services/), so the project's test command
# (scripts/test) and CI need nothing outside the repository. Behaviour is unchanged except that, for
# --with-moto, the project's .venv/bin/moto_server is found without activating the venv.
#
# What it starts (all as plain background processes, no systemd, no syslog):
#   * OpenStack Swift "all in one" (Debian/Ubuntu packages): memcached, an
#     account, a container and an object server (1-replica rings, one device
#     that is just a directory) and a proxy server whose pipeline offers
#       - the Swift API with v1.0 "tempauth" auth (what IBM COS's Swift API
#         looks like: auth URL .../auth/v1.0, user ACCOUNT:USER, API key), and
#       - the S3 API through the s3api middleware (SigV4/SigV2, multipart
#         uploads, presigned URLs) with the same credentials,
#     plus slo, dlo, tempurl, bulk, copy, versioned_writes, symlink.
#   * optionally (--with-moto) a moto S3 server: a second, independent S3
#     implementation (pip install 'moto[server]').
#
# Usage:
#   object-store.sh start  [--with-moto] [DIR]  start what is not running yet,
#                                               wait until it answers, print
#                                               `export` lines on stdout
#   object-store.sh env    [DIR]                print the `export` lines again
#   object-store.sh status [DIR]                show processes and probe the
#                                               endpoints; exit 0 if all is up
#   object-store.sh stop   [DIR]                stop the processes recorded in
#                                               DIR (and only those)
#
#   eval "$(object-store.sh start)"   # typical use in a shell or a CI step
#
# DIR defaults to $OBJECT_STORE_DIR, else ${TMPDIR:-/tmp}/object-store.
# Everything (configs, rings, data, logs, pid files) lives in DIR; nothing is
# written to /etc/swift. `stop` then `rm -rf DIR` resets all state. Data
# survives a stop/start cycle.
#
# Settings: environment variables read by `start` when nothing is running in
# DIR; recorded in DIR/settings.env for env/status/stop:
#   OBJECT_STORE_PROXY_PORT      8080  Swift proxy: Swift API and S3 API
#   OBJECT_STORE_OBJECT_PORT     8081  Swift object server (backend only)
#   OBJECT_STORE_CONTAINER_PORT  8082  Swift container server (backend only)
#   OBJECT_STORE_ACCOUNT_PORT    8083  Swift account server (backend only)
#   OBJECT_STORE_MEMCACHED_PORT  8084  memcached (tempauth tokens, caches)
#   OBJECT_STORE_MOTO_PORT       9000  moto S3 server (--with-moto)
#   OBJECT_STORE_REGION          us-east-1  S3 region (s3api checks it in SigV4)
#   OBJECT_STORE_PROXY_WORKERS   0     proxy worker processes; 0 = one process
#                                      that serves (as fast as 1-2 workers on
#                                      a 2-core box; raise it on big runners)
#   OBJECT_STORE_MAX_FILE_SIZE   5368709122  largest single Swift object /
#                                      S3 part; lower it to test SLO/multipart
#                                      code paths with small blobs
#   OBJECT_STORE_LOG_LEVEL       INFO  Swift log level; INFO logs every
#                                      request, WARNING keeps the logs small
#   OBJECT_STORE_START_TIMEOUT   90    seconds to wait for the endpoints
#   OBJECT_STORE_PYTHON          /usr/bin/python3  the python that has the
#                                      Debian "swift" modules
#   OBJECT_STORE_MOTO_SERVER     (auto) moto_server executable; default: the
#                                      one on PATH, else `python3 -m
#                                      moto.server` if python3 can import it
#   OBJECT_STORE_NO_INSTALL      unset  set to 1 to never run apt-get
#
# Credentials (fixed, test only): Swift user test:tester, key "testing"
# (account AUTH_test); S3 access key "test:tester", secret "testing".
# More tempauth users for multi-tenant/ACL tests: test2:tester2/testing2
# (admin of AUTH_test2), test:tester3/testing3 (non-admin in AUTH_test).

set -euo pipefail

log() { printf 'object-store: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '/^# Usage:/,/^# DIR defaults/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------
command=${1:-}
[ $# -gt 0 ] && shift
with_moto=0
dir_arg=
for arg in "$@"; do
    case $arg in
        --with-moto) with_moto=1 ;;
        -h|--help) usage ;;
        -*) die "unknown option: $arg" ;;
        *) [ -z "$dir_arg" ] || die "more than one DIR given"; dir_arg=$arg ;;
    esac
done
case $command in
    start|stop|env|status) ;;
    -h|--help|help|'') usage ;;
    *) log "unknown command: $command"; usage ;;
esac

DIR=${dir_arg:-${OBJECT_STORE_DIR:-${TMPDIR:-/tmp}/object-store}}
DIR=$(realpath -m -- "$DIR")   # absolute: it ends up in configs
SETTINGS=$DIR/settings.env      # the settings `start` used for this DIR
RUN=$DIR/run                    # pid files
LOGS=$DIR/log                   # one log file per process
ETC=$DIR/etc                    # swift.conf, *-server.conf, rings

# Settings. `start` with nothing running takes them from the environment (or
# the defaults) and records them in DIR; every other time the values recorded
# in DIR win, because the running services were configured with them.
load_settings() {   # load_settings [--fresh]
    unset PROXY_PORT OBJECT_PORT CONTAINER_PORT ACCOUNT_PORT MEMCACHED_PORT \
        MOTO_PORT REGION PROXY_WORKERS MAX_FILE_SIZE LOG_LEVEL PYTHON
    if [ "${1:-}" != --fresh ] && [ -f "$SETTINGS" ]; then
        # shellcheck disable=SC1090
        . "$SETTINGS"
    fi
    PROXY_PORT=${PROXY_PORT:-${OBJECT_STORE_PROXY_PORT:-8080}}
    OBJECT_PORT=${OBJECT_PORT:-${OBJECT_STORE_OBJECT_PORT:-8081}}
    CONTAINER_PORT=${CONTAINER_PORT:-${OBJECT_STORE_CONTAINER_PORT:-8082}}
    ACCOUNT_PORT=${ACCOUNT_PORT:-${OBJECT_STORE_ACCOUNT_PORT:-8083}}
    MEMCACHED_PORT=${MEMCACHED_PORT:-${OBJECT_STORE_MEMCACHED_PORT:-8084}}
    MOTO_PORT=${MOTO_PORT:-${OBJECT_STORE_MOTO_PORT:-9000}}
    REGION=${REGION:-${OBJECT_STORE_REGION:-us-east-1}}
    PROXY_WORKERS=${PROXY_WORKERS:-${OBJECT_STORE_PROXY_WORKERS:-0}}
    MAX_FILE_SIZE=${MAX_FILE_SIZE:-${OBJECT_STORE_MAX_FILE_SIZE:-5368709122}}
    LOG_LEVEL=${LOG_LEVEL:-${OBJECT_STORE_LOG_LEVEL:-INFO}}
    PYTHON=${PYTHON:-${OBJECT_STORE_PYTHON:-/usr/bin/python3}}
}

save_settings() {
    mkdir -p "$DIR"
    cat > "$SETTINGS" <<EOF
# written by "object-store.sh start" from OBJECT_STORE_* (or defaults);
# used by env/status/stop and by start while something is running
PROXY_PORT=$PROXY_PORT
OBJECT_PORT=$OBJECT_PORT
CONTAINER_PORT=$CONTAINER_PORT
ACCOUNT_PORT=$ACCOUNT_PORT
MEMCACHED_PORT=$MEMCACHED_PORT
MOTO_PORT=$MOTO_PORT
REGION=$REGION
PROXY_WORKERS=$PROXY_WORKERS
MAX_FILE_SIZE=$MAX_FILE_SIZE
LOG_LEVEL=$LOG_LEVEL
PYTHON=$PYTHON
EOF
}

# The test credentials (tempauth users are defined in proxy-server.conf).
SWIFT_USER=test:tester
SWIFT_KEY=testing

SWIFT_SERVICES="account container object proxy"

# --------------------------------------------------------------------------
# Process bookkeeping: DIR/run/NAME.pid holds the PID of each process we
# started. A PID only counts as ours if its command line still contains the
# marker we started it with (guards against PID reuse after a reboot).
# --------------------------------------------------------------------------
# (Only bash builtins here: the start-up wait loop calls this a lot.)
pid_of() {   # pid_of SERVICE: print the PID if the process is alive and ours
    local pidfile=$RUN/$1.pid pid='' marker argv=()
    [ -f "$pidfile" ] && read -r pid < "$pidfile" && [ -n "$pid" ] || return 1
    case $1 in
        memcached|moto) marker=$1 ;;
        *) marker="$ETC/$1-server.conf" ;;
    esac
    # NUL-separated arguments; empty for a zombie, missing for a dead PID
    mapfile -d '' -t argv 2>/dev/null < "/proc/$pid/cmdline" || return 1
    [[ " ${argv[*]} " == *"$marker"* ]] || return 1
    echo "$pid"
}

is_running() { pid_of "$1" >/dev/null; }

# launch SERVICE COMMAND...: start COMMAND in the background, logging to
# DIR/log/SERVICE.log, and record its PID.
#   setsid: a session of its own, so that neither a closing terminal nor a
#     test runner that kills its process group takes the server down (only
#     `stop` does); the child writes its own PID ($$ survives the exec), which
#     stays right even where setsid has to fork.
#   < /dev/null: never read the caller's input; 9>&-: do not inherit the
#     lock on DIR (see lock_dir).
launch() {
    local name=$1; shift
    mkdir -p "$RUN" "$LOGS"
    rm -f "$RUN/$name.pid"
    printf '\n==== %s: %s\n' "$(date '+%F %T')" "$*" >> "$LOGS/$name.log"
    # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
    setsid bash -c 'echo $$ > "$0" && exec "$@"' "$RUN/$name.pid" "$@" \
        >> "$LOGS/$name.log" 2>&1 < /dev/null 9>&- &
    local _
    for _ in $(seq 100); do
        [ -s "$RUN/$name.pid" ] && return 0
        sleep 0.05
    done
    die "$name did not start (see $LOGS/$name.log)"
}

port_of() {   # port_of SERVICE
    case $1 in
        memcached) echo "$MEMCACHED_PORT" ;;
        account) echo "$ACCOUNT_PORT" ;;
        container) echo "$CONTAINER_PORT" ;;
        object) echo "$OBJECT_PORT" ;;
        proxy) echo "$PROXY_PORT" ;;
        moto) echo "$MOTO_PORT" ;;
    esac
}

port_busy() {   # port_busy PORT: true if something accepts connections there
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --------------------------------------------------------------------------
# Packages
# --------------------------------------------------------------------------
ensure_packages() {
    # Debian/Ubuntu package -> a file that proves it is installed. The
    # python modules come with python3-swift, a dependency of these.
    local -A need=(
        [swift]=/usr/bin/swift-ring-builder
        [swift-proxy]=/usr/bin/swift-proxy-server
        [swift-account]=/usr/bin/swift-account-server
        [swift-container]=/usr/bin/swift-container-server
        [swift-object]=/usr/bin/swift-object-server
        [memcached]=/usr/bin/memcached
    )
    local missing=() pkg
    for pkg in "${!need[@]}"; do
        [ -e "${need[$pkg]}" ] || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "${OBJECT_STORE_NO_INSTALL:-}" = 1 ] &&
        die "missing packages: ${missing[*]} (OBJECT_STORE_NO_INSTALL=1)"
    command -v apt-get >/dev/null ||
        die "missing packages: ${missing[*]}; no apt-get (Debian/Ubuntu only)"

    local sudo=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
        sudo="sudo -n"
    fi
    log "installing Debian packages: ${missing[*]}"

    # The packages ship init scripts/systemd units that would start a system
    # proxy on :8080 and memcached on :11211. A policy-rc.d that answers 101
    # ("action forbidden") keeps invoke-rc.d/deb-systemd-invoke from starting
    # them; we only add one if there is none, and remove it again.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    {
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
        { $sudo apt-get update -q >&2 &&
          $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
    } || rc=$?
    [ $added_policy = 1 ] && $sudo rm -f "$policy"
    [ $rc = 0 ] || die "apt-get install ${missing[*]} failed"
}

# --------------------------------------------------------------------------
# Configuration files and rings
# --------------------------------------------------------------------------
write_helpers() {
    mkdir -p "$DIR/bin"

    # Swift's own launchers (swift-proxy-server, ...) always read
    # /etc/swift/swift.conf (hash prefix, storage policies, constraints) and
    # always log to syslog (/dev/log, else UDP localhost:514). This wrapper
    # does what they do, but reads DIR/etc/swift.conf and logs only to stderr.
    cat > "$DIR/bin/swift-server" <<'EOF'
"""usage: swift-server SWIFT_DIR APP_SECTION CONF_FILE

Run one Swift WSGI server (like /usr/bin/swift-proxy-server CONF_FILE -v)
with SWIFT_DIR/swift.conf instead of /etc/swift/swift.conf, logging to stderr
only (no syslog).
"""
import logging
import os
import sys

swift_dir, app_section, conf_file = sys.argv[1:4]

# eventlet's green DNS resolver costs ~1 s of start-up (it imports dnspython
# and httpx); we only ever connect to IP addresses.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

from swift.common import utils
# Must happen before swift.common.constraints / storage_policy are imported:
# they read swift.conf when imported (the reloads are belt and braces).
utils.SWIFT_CONF_FILE = os.path.join(swift_dir, "swift.conf")
from swift.common import constraints, storage_policy
constraints.reload_constraints()
storage_policy.reload_storage_policies()

# get_logger() always adds a syslog handler; make it a no-op. verbose=True
# below adds the handler that writes to stderr.
logs_module = sys.modules[utils.get_logger.__module__]
logs_module.ThreadSafeSysLogHandler = lambda *args, **kwargs: logging.NullHandler()

from swift.common.wsgi import run_wsgi
sys.exit(run_wsgi(conf_file, app_section, verbose=True))
EOF

    # Readiness probe, stdlib only. It signs an S3 ListBuckets with SigV4 so
    # that "ready" means s3api + tempauth + memcached + account server work.
    cat > "$DIR/bin/probe" <<'EOF'
"""usage: probe swift AUTH_URL USER KEY | probe s3 ENDPOINT ACCESS SECRET REGION

Exit 0 if the endpoint answers a real authenticated request, else print why
and exit 1.
"""
import datetime
import hashlib
import hmac
import sys
import urllib.error
import urllib.parse
import urllib.request


def swift(auth_url, user, key):
    req = urllib.request.Request(
        auth_url, headers={"X-Auth-User": user, "X-Auth-Key": key})
    with urllib.request.urlopen(req, timeout=5) as resp:
        url = resp.headers["X-Storage-Url"]
        token = resp.headers["X-Auth-Token"]
    # HEAD the account: proxy -> account server.
    req = urllib.request.Request(url, method="HEAD",
                                 headers={"X-Auth-Token": token})
    urllib.request.urlopen(req, timeout=5).close()


def s3(endpoint, access, secret, region):
    # AWS Signature Version 4 for "GET /" (ListBuckets).
    host = urllib.parse.urlsplit(endpoint).netloc
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload,
               "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["GET", "/", ""]
                          + ["%s:%s" % (k, headers[k]) for k in sorted(headers)]
                          + ["", signed, payload])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (access, scope, signed, signature))
    del headers["host"]
    req = urllib.request.Request(endpoint.rstrip("/") + "/", headers=headers)
    urllib.request.urlopen(req, timeout=5).close()


try:
    {"swift": swift, "s3": s3}[sys.argv[1]](*sys.argv[2:])
except urllib.error.HTTPError as e:
    print("%s %s: HTTP %s %s" % (sys.argv[1], sys.argv[2], e.code,
                                 e.read()[:300]))
    sys.exit(1)
except Exception as e:
    print("%s %s: %s" % (sys.argv[1], sys.argv[2], e))
    sys.exit(1)
EOF
}

write_swift_configs() {
    local user
    user=$(id -un)
    mkdir -p "$ETC" "$DIR/srv/node/d1" "$LOGS" "$RUN"

    # Cluster-wide settings. The hash prefix/suffix only need to be constant
    # for the lifetime of the data in DIR.
    cat > "$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = object-store-dev
swift_hash_path_suffix = object-store-dev

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
# Largest object (and S3 part) Swift accepts in one PUT; bigger blobs need
# SLO (Swift API) or multipart upload (S3 API), as on real clusters.
max_file_size = $MAX_FILE_SIZE
EOF

    # Backend servers: settings shared by account, container, object server.
    local name port
    for name in account container object; do
        case $name in
            account) port=$ACCOUNT_PORT ;;
            container) port=$CONTAINER_PORT ;;
            object) port=$OBJECT_PORT ;;
        esac
        cat > "$ETC/$name-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
# one process, no forked workers: the PID we record is the whole server
workers = 0
user = $user
swift_dir = $ETC
# the "device" d1 is just the directory $DIR/srv/node/d1
devices = $DIR/srv/node
mount_check = false
disable_fallocate = true
log_level = $LOG_LEVEL

[pipeline:main]
pipeline = $name-server

[app:$name-server]
use = egg:swift#$name
EOF
    done
    cat >> "$ETC/object-server.conf" <<EOF
# Wait this long for the container server to list a new object before
# leaving the update to an object-updater (which we do not run): listings
# are then complete as soon as a PUT returned, even on a slow CI machine.
container_update_timeout = 10
# 1 MiB instead of 64 KiB reads/writes: GETs twice as fast, less CPU
network_chunk_size = 1048576
disk_chunk_size = 1048576
EOF

    # The proxy. Order matters: s3api translates S3 requests into Swift
    # requests and must come just before the auth middleware (tempauth);
    # slo after s3api (multipart uploads are SLOs); versioned_writes before
    # symlink.
    cat > "$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
# 0: one process serves (no forked workers), so the PID we record is all of it
workers = $PROXY_WORKERS
user = $user
swift_dir = $ETC
log_level = $LOG_LEVEL

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# accounts (AUTH_test, ...) come into existence on first use
account_autocreate = true
# 1 MiB instead of 64 KiB chunks: GETs twice as fast, less CPU
object_chunk_size = 1048576
client_chunk_size = 1048576

[filter:tempauth]
use = egg:swift#tempauth
# user_<account>_<user> = <key> [groups]; .admin = owner of the account
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3

[filter:s3api]
use = egg:swift#s3api
# SigV4 requests must be signed for this region
location = $REGION
# S3 allows 10000 parts (Swift's default is 1000); slo below must match
max_upload_part_num = 10000

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:dlo]
use = egg:swift#dlo

[filter:tempurl]
use = egg:swift#tempurl

[filter:bulk]
use = egg:swift#bulk

[filter:copy]
use = egg:swift#copy

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:symlink]
use = egg:swift#symlink

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:catch_errors]
use = egg:swift#catch_errors
EOF
}

build_rings() {
    # One replica, one device per ring. This is what
    #   swift-ring-builder X.builder create 8 1 1
    #   swift-ring-builder X.builder add r1z1-127.0.0.1:PORT/d1 1
    #   swift-ring-builder X.builder rebalance
    # does for X in account/container/object, done in one python process
    # (1 s instead of 10 s). Rebuilt only when the ports changed.
    local stamp="$ACCOUNT_PORT $CONTAINER_PORT $OBJECT_PORT"
    if [ -f "$ETC/object.ring.gz" ] && [ "$(cat "$ETC/rings.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    (cd "$ETC" && "$PYTHON" - "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" <<'EOF'
import sys
from swift.common.ring import RingBuilder
for name, port in zip(("account", "container", "object"), sys.argv[1:]):
    builder = RingBuilder(8, 1, 1)   # part power 8, 1 replica, min_part_hours 1
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1",
                     "port": int(port), "device": "d1", "weight": 1})
    builder.rebalance()
    builder.save(name + ".builder")
    builder.get_ring().save(name + ".ring.gz")
EOF
    ) || die "building the rings failed"
    echo "$stamp" > "$ETC/rings.stamp"
}

check_xattrs() {
    # The object server keeps metadata in user.* extended attributes. ext4,
    # xfs, btrfs and overlayfs have them; tmpfs only since Linux 6.6.
    "$PYTHON" - "$DIR/srv/node/d1" <<'EOF' || die "the filesystem of $DIR has no user xattrs; use another DIR (e.g. under /var/tmp)"
import os, sys, tempfile
with tempfile.NamedTemporaryFile(dir=sys.argv[1]) as f:
    os.setxattr(f.name, "user.object-store-check", b"1")
EOF
}

# --------------------------------------------------------------------------
# moto
# --------------------------------------------------------------------------
moto_program_gone() {   # moto_program_gone: the running moto's files were deleted (print which one)
    # moto runs from a virtualenv, often a checkout's .venv, and imports parts of itself lazily: once that
    # checkout is deleted, it keeps answering ListBuckets and fails CreateBucket with a 500, forever.
    local pid arg argv=()
    pid=$(pid_of moto) || return 1
    mapfile -d '' -t argv 2>/dev/null < "/proc/$pid/cmdline" || return 1
    for arg in "${argv[@]}"; do
        if [[ $arg == /* ]] && [ ! -e "$arg" ]; then
            echo "$arg"
            return 0
        fi
    done
    return 1
}

moto_command() {   # print the command that runs moto, or fail
    if [ -n "${OBJECT_STORE_MOTO_SERVER:-}" ]; then
        echo "$OBJECT_STORE_MOTO_SERVER"
    elif command -v moto_server >/dev/null; then
        command -v moto_server
    elif [ -x "$(dirname "$0")/../.venv/bin/moto_server" ]; then
        # trustyard: the test extra installs moto[server] into the project's venv.
        (cd "$(dirname "$0")/../.venv/bin" && echo "$(pwd)/moto_server")
    elif command -v python3 >/dev/null && python3 -c 'import moto.server, flask' 2>/dev/null; then
        echo "$(command -v python3) -m moto.server"
    else
        return 1
    fi
}

# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
print_env() {
    cat <<EOF
export SWIFT_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
export SWIFT_USERNAME=$SWIFT_USER
export SWIFT_PASSWORD=$SWIFT_KEY
export S3_ENDPOINT_URL=http://127.0.0.1:$PROXY_PORT
export AWS_ACCESS_KEY_ID=$SWIFT_USER
export AWS_SECRET_ACCESS_KEY=$SWIFT_KEY
export AWS_DEFAULT_REGION=$REGION
EOF
    if is_running moto; then
        echo "export MOTO_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT"
    fi
}

show_log_tails() {
    local f
    for f in "$LOGS"/*.log; do
        [ -f "$f" ] || continue
        printf '\n---- last lines of %s\n' "$f" >&2
        tail -n 15 "$f" >&2
    done
}

probe_all() {   # probe_all: exit 0 if every started endpoint answers
    # Cheap port checks first (Swift servers listen only once their app is
    # loaded), then real requests, which cost a python start each.
    local s
    for s in memcached $SWIFT_SERVICES; do
        port_busy "$(port_of "$s")" || { echo "nothing listens on 127.0.0.1:$(port_of "$s") ($s)"; return 1; }
    done
    if is_running moto && ! port_busy "$MOTO_PORT"; then
        echo "nothing listens on 127.0.0.1:$MOTO_PORT (moto)"; return 1
    fi
    "$PYTHON" "$DIR/bin/probe" swift "http://127.0.0.1:$PROXY_PORT/auth/v1.0" "$SWIFT_USER" "$SWIFT_KEY" &&
    "$PYTHON" "$DIR/bin/probe" s3 "http://127.0.0.1:$PROXY_PORT" "$SWIFT_USER" "$SWIFT_KEY" "$REGION" || return 1
    if is_running moto; then
        "$PYTHON" "$DIR/bin/probe" s3 "http://127.0.0.1:$MOTO_PORT" test test "$REGION" || return 1
    fi
}

# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------
cmd_start() {
    local s any=0
    for s in memcached $SWIFT_SERVICES moto; do is_running "$s" && any=1; done
    if [ $any = 1 ]; then load_settings; else load_settings --fresh; fi
    ensure_packages
    [ -x "$PYTHON" ] || die "$PYTHON not found (set OBJECT_STORE_PYTHON)"
    mkdir -p "$DIR" "$RUN" "$LOGS"

    local gone
    if [ $with_moto = 1 ] && gone=$(moto_program_gone); then
        log "the running moto's $gone is gone (its virtualenv was deleted): restarting moto"
        stop_services moto >/dev/null
    fi

    # What is missing? (memcached and the Swift servers always; moto if asked)
    local missing=()
    for s in memcached $SWIFT_SERVICES; do is_running "$s" || missing+=("$s"); done
    local moto_cmd=
    if [ $with_moto = 1 ] && ! is_running moto; then
        if moto_cmd=$(moto_command); then
            missing+=(moto)
        else
            log "warning: --with-moto: moto is not installed; continuing without it."
            log "  install it with: python3 -m venv VENV && VENV/bin/pip install 'moto[server]'"
            log "  then activate VENV, or set OBJECT_STORE_MOTO_SERVER=VENV/bin/moto_server"
        fi
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        log "already running in $DIR"
        print_env
        return 0
    fi

    # (Re)write configs and helpers only if no Swift server is using them.
    local any_swift=0
    for s in $SWIFT_SERVICES; do is_running "$s" && any_swift=1; done
    if [ $any_swift = 0 ]; then
        save_settings
        write_helpers
        write_swift_configs
        build_rings
    fi
    check_xattrs

    # Refuse to start on a port that another process is using.
    for s in "${missing[@]}"; do
        local port
        port=$(port_of "$s")
        ! port_busy "$port" ||
            die "port $port ($s) is in use by another process; set OBJECT_STORE_${s^^}_PORT or stop it"
    done

    local t0=${EPOCHREALTIME/./}   # microseconds
    log "starting ${missing[*]} in $DIR"
    for s in "${missing[@]}"; do
        case $s in
            memcached)
                # -U 0: no UDP; -u root: memcached refuses root without it
                local as_user=()
                [ "$(id -u)" = 0 ] && as_user=(-u root)
                launch memcached memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 "${as_user[@]}" ;;
            moto)
                # shellcheck disable=SC2086  # may be "python3 -m moto.server"
                launch moto $moto_cmd -H 127.0.0.1 -p "$MOTO_PORT" ;;
            *)
                launch "$s" "$PYTHON" "$DIR/bin/swift-server" "$ETC" "$s-server" "$ETC/$s-server.conf" ;;
        esac
    done

    # Wait until every endpoint answers an authenticated request, or a
    # process died, or the timeout passed.
    local timeout=${OBJECT_STORE_START_TIMEOUT:-90} why='' failed=''
    while [ -z "$failed" ]; do
        why=$(probe_all 2>&1) && break
        for s in "${missing[@]}"; do
            is_running "$s" || failed="$s exited"
        done
        if [ $(( (${EPOCHREALTIME/./} - t0) / 1000000 )) -ge "$timeout" ]; then
            failed="timeout after ${timeout}s: $why"
        fi
        sleep 0.1
    done
    if [ -n "$failed" ]; then
        show_log_tails
        log "error: not ready: $failed"
        log "logs are in $LOGS; stopping what this command started"
        stop_services "${missing[@]}" >/dev/null 2>&1 || true
        exit 1
    fi
    local ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
    log "ready after $((ms / 1000)).$(printf %03d $((ms % 1000)))s"
    print_env
}

# stop_services SERVICE...: SIGTERM the recorded PIDs (only those, and only
# if they are still ours), wait up to 10 s, then SIGKILL what is left.
stop_services() {
    local s pid stopped=()
    for s in "$@"; do
        if pid=$(pid_of "$s"); then
            kill -TERM "$pid" 2>/dev/null || true
            stopped+=("$s:$pid")
        fi
    done
    local left
    for _ in $(seq 50); do
        left=0
        for s in "$@"; do is_running "$s" && left=1; done
        [ $left = 0 ] && break
        sleep 0.2
    done
    for s in "$@"; do
        if pid=$(pid_of "$s"); then
            log "$s ($pid) did not exit on SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$RUN/$s.pid"
    done
    if [ ${#stopped[@]} -gt 0 ]; then
        log "stopped ${stopped[*]}"
    else
        log "nothing running in $DIR"
    fi
}

cmd_stop() {
    load_settings
    stop_services moto proxy object container account memcached
}

cmd_env() {
    [ -f "$SETTINGS" ] || die "no object store in $DIR (run: $0 start $DIR)"
    load_settings
    is_running proxy || log "warning: Swift is not running in $DIR"
    print_env
}

cmd_status() {
    [ -f "$SETTINGS" ] || { log "no object store in $DIR"; exit 3; }
    load_settings
    local s pid rc=0
    for s in memcached $SWIFT_SERVICES moto; do
        if pid=$(pid_of "$s"); then
            printf '%-10s running  pid %-7s 127.0.0.1:%s\n' "$s" "$pid" "$(port_of "$s")"
        elif [ "$s" != moto ] || [ -f "$RUN/moto.pid" ]; then
            printf '%-10s STOPPED            127.0.0.1:%s\n' "$s" "$(port_of "$s")"
            rc=3
        fi
    done
    if [ $rc = 0 ]; then
        local why
        if why=$(probe_all 2>&1); then
            echo "endpoints answer authenticated requests"
        else
            echo "endpoints do NOT answer: $why"
            rc=1
        fi
    fi
    return $rc
}

# start and stop take an exclusive lock on DIR, so that concurrent callers
# (say, one per pytest-xdist worker) queue up instead of racing; the later
# ones then find everything running. stop goes ahead without the lock after
# a while: stopping must always be possible.
lock_dir() {   # lock_dir start|stop
    mkdir -p "$DIR"
    exec 9> "$DIR/lock"
    local wait=$(( ${OBJECT_STORE_START_TIMEOUT:-90} + 30 ))
    [ "$1" = stop ] && wait=15
    flock -w "$wait" 9 && return 0
    [ "$1" = stop ] || die "another start still holds $DIR/lock after ${wait}s"
    log "warning: $DIR/lock is held by another process; stopping anyway"
}

case $command in
    start) lock_dir start; cmd_start ;;
    stop) lock_dir stop; cmd_stop ;;
    env) cmd_env ;;
    status) cmd_status ;;
esac
