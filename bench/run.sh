#!/usr/bin/env bash
# bench/run.sh — trustyard vs. CNCF Distribution 2.8.2, side by side, on this machine.
#
#   bench/run.sh [--storage fs|swift|s3] [--quick] [any other registry-bench.sh option, e.g. --only manifest_]
#
# Starts trustyard (fresh tmp data dir, access log off, log level warning, `serve --insecure-http`: plain
# HTTP like Distribution, but with its Docker token auth ON, as it always runs) and Distribution
# (`docker-registry`, log.level error, access log disabled, deletes enabled, no auth) on free loopback ports,
# runs bench/registry-bench.sh A --vs B --pid PID_A --vs-pid PID_B --user admin:<app token>, stops
# both and writes the summary to bench/results/latest[-STORAGE][-quick].txt. Raw logs (server logs, bench
# stderr, --json samples) stay in a tmp dir whose path is printed.
#
# Auth: the admin password is set with TRUSTYARD_ADMIN_PASSWORD; an app token (tyt_..., checked with one
# SHA-256 instead of argon2) is created through POST /api/v1/users/admin/tokens and given to the benchmark as
# --user admin:TOKEN; the benchmark then does the Docker token flow (401 challenge -> GET /auth/token with
# Basic -> Bearer JWT on every /v2/ request). Distribution has no auth configured (the challenge probe gets
# 200 and it sends nothing).
#
# --storage swift|s3: both registries on the SAME object store, started with `bash scripts/object-store.sh
# start` (a no-op when it already runs; its export lines are eval'ed). Each registry gets its own fresh
# container (swift driver) or bucket (s3 driver, created here with boto3: Distribution does not create
# buckets), purged and deleted afterwards. Blob GETs stream through both registries (storage-wide
# `redirect: {disable: true}` in both configs), so pulls measure the registry, not a presigned redirect.
# Distribution runs under `env -u AWS_CA_BUNDLE` (its s3 driver panics on it). The store alone:
# `.venv/bin/python bench/object_store_util.py alone`.
#
# Environment: TY_WORKERS (default: trustyard's own default, one
# per core), TRUSTYARD (default: <repo>/.venv/bin/trustyard), DISTRIBUTION (default: docker-registry),
# KEEP_TMP=1 keeps the raw dir even on success (it is always kept; this only silences the hint).
#
# CPU accounting: registry_bench.py's --pid sums utime+stime (+ reaped children's cutime+cstime) over the
# whole process tree of PID, and peak RSS is max(sampled sum of VmRSS over the tree, sum of VmHWM). We pass
# the Granian main process, so its worker processes are counted in both.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
BENCH="$HERE/registry-bench.sh"
TRUSTYARD="${TRUSTYARD:-$REPO/.venv/bin/trustyard}"
DISTRIBUTION="${DISTRIBUTION:-docker-registry}"
[[ -x "$TRUSTYARD" ]] || { echo "run.sh: $TRUSTYARD not found (set TRUSTYARD)" >&2; exit 2; }
command -v "$DISTRIBUTION" >/dev/null || { echo "run.sh: $DISTRIBUTION not found" >&2; exit 2; }

PY="$REPO/.venv/bin/python"
QUICK=""
STORAGE=fs
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --storage) STORAGE="$2"; shift 2 ;;
        --storage=*) STORAGE="${1#*=}"; shift ;;
        --quick) QUICK="-quick"; args+=("$1"); shift ;;
        *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]+"${args[@]}"}"
case "$STORAGE" in fs|swift|s3) ;; *) echo "run.sh: --storage fs|swift|s3" >&2; exit 2 ;; esac
SUFFIX=""
[[ "$STORAGE" != fs ]] && SUFFIX="-$STORAGE"
ADMIN_PASSWORD="${TRUSTYARD_ADMIN_PASSWORD:-bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/trustyard-bench.XXXXXX")"
mkdir -p "$TMP/ty" "$TMP/dist/root" "$HERE/results"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TY_PORT="$(free_port)"
DIST_PORT="$(free_port)"
while [[ "$DIST_PORT" == "$TY_PORT" ]]; do DIST_PORT="$(free_port)"; done

TAG="$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TY_STORE="ty-bench-$TAG" DIST_STORE="dist-bench-$TAG"
case "$STORAGE" in
    fs)
        DIST_STORAGE="  filesystem:
    rootdirectory: $TMP/dist/root"
        TY_STORAGE="" ;;
    swift|s3)
        eval "$(bash "$REPO/scripts/object-store.sh" start)"
        if [[ "$STORAGE" == swift ]]; then
            drv() { printf '  swift:\n    authurl: %s\n    username: %s\n    password: %s\n    container: %s\n' \
                "$SWIFT_AUTH_URL" "$SWIFT_USERNAME" "$SWIFT_PASSWORD" "$1"; }
        else
            "$PY" "$HERE/object_store_util.py" create-bucket "$TY_STORE" "$DIST_STORE"
            drv() { printf '  s3:\n    region: %s\n    regionendpoint: %s\n    accesskey: %s\n    secretkey: %s\n    bucket: %s\n    forcepathstyle: true\n' \
                "$AWS_DEFAULT_REGION" "$S3_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$1"; }
        fi
        DIST_STORAGE="$(drv "$DIST_STORE")
  redirect:
    disable: true"
        # trustyard: driver-level `redirect: false` (its own switch; the storage-wide block is Distribution's).
        TY_STORAGE="storage:
$(drv "$TY_STORE")
    redirect: false" ;;
esac
cat > "$TMP/dist/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
$DIST_STORAGE
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$DIST_PORT
YML
printf '%s\n' "$TY_STORAGE" > "$TMP/ty-config.yml"

TY_PID="" DIST_PID=""
stop() {
    local pid
    for pid in $TY_PID $DIST_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $TY_PID $DIST_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    case "$STORAGE" in   # object stores: remove what this run wrote (best effort; KEEP_STORE=1 keeps it)
        *) [[ -n "${KEEP_STORE:-}" ]] && return 0 ;;
    esac
    case "$STORAGE" in
        swift) "$PY" "$HERE/object_store_util.py" purge-swift "$TY_STORE" "$DIST_STORE" || true ;;
        s3) "$PY" "$HERE/object_store_util.py" purge-s3 "$TY_STORE" "$DIST_STORE" || true ;;
    esac
}
trap stop EXIT

workers=()
[[ -n "${TY_WORKERS:-}" ]] && workers=(--workers "$TY_WORKERS")
config=()
[[ -n "$TY_STORAGE" ]] && config=(--config "$TMP/ty-config.yml")  # Distribution's storage block, as operators give it
TRUSTYARD_ADMIN_PASSWORD="$ADMIN_PASSWORD" TRUSTYARD_ACCESS_LOG=false TRUSTYARD_LOG_LEVEL=warning \
    "$TRUSTYARD" serve --insecure-http --data-dir "$TMP/ty" "${config[@]+"${config[@]}"}" \
    --listen "127.0.0.1:$TY_PORT" "${workers[@]+"${workers[@]}"}" >"$TMP/trustyard.log" 2>&1 &
TY_PID=$!
env -u AWS_CA_BUNDLE "$DISTRIBUTION" serve "$TMP/dist/config.yml" >"$TMP/distribution.log" 2>&1 &
DIST_PID=$!

wait_up() {   # wait_up URL PID NAME
    for _ in $(seq 150); do
        kill -0 "$2" 2>/dev/null || { echo "run.sh: $3 exited; log:" >&2; cat "$TMP/$3.log" >&2; exit 1; }
        code="$(curl -sS -o /dev/null -w '%{http_code}' "$1/v2/" 2>/dev/null || true)"
        [[ "$code" == 200 || "$code" == 401 ]] && return 0
        sleep 0.1
    done
    echo "run.sh: $3 did not answer on $1/v2/ within 15 s" >&2; exit 1
}
TY_URL="http://127.0.0.1:$TY_PORT"
DIST_URL="http://127.0.0.1:$DIST_PORT"
wait_up "$TY_URL" "$TY_PID" trustyard
wait_up "$DIST_URL" "$DIST_PID" distribution
sleep 1   # let every Granian worker finish importing before the first measurement
APP_TOKEN="$(curl -fsS -u "admin:$ADMIN_PASSWORD" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
    "$TY_URL/api/v1/users/admin/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')" \
    || { echo "run.sh: could not create an app token; log:" >&2; cat "$TMP/trustyard.log" >&2; exit 1; }

OUT="$HERE/results/latest$SUFFIX$QUICK.txt"
{
    echo "# bench/run.sh $* — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "# A = trustyard $("$TRUSTYARD" --version 2>/dev/null | awk '{print $NF}') (git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty'), workers=${TY_WORKERS:-default}, $(ps --ppid "$TY_PID" -o pid= | wc -l) worker procs, --insecure-http, token auth on)"
    echo "# storage: $STORAGE$([[ "$STORAGE" != fs ]] && echo " (Swift 2.30 AIO on 127.0.0.1:8080, ty=$TY_STORE dist=$DIST_STORE, redirects off)")"
    echo "# B = $("$DISTRIBUTION" --version 2>&1 | head -1)"
    echo "# machine: $(nproc) cpus, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$TMP/header.txt"

echo "run.sh: trustyard $TY_URL (pid $TY_PID), distribution $DIST_URL (pid $DIST_PID), raw logs in $TMP" >&2
set +e
"$BENCH" "$TY_URL" --vs "$DIST_URL" --pid "$TY_PID" --vs-pid "$DIST_PID" --user "admin:$APP_TOKEN" \
    --json "$TMP/samples.json" "$@" \
    > "$TMP/summary.txt" 2> >(tee "$TMP/bench.stderr" >&2)
rc=$?
set -e
cat "$TMP/header.txt" "$TMP/summary.txt" > "$OUT"
cat "$OUT"
echo "run.sh: exit $rc; summary in $OUT; raw logs in $TMP" >&2
exit $rc
