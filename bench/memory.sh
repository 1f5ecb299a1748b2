#!/usr/bin/env bash
# bench/memory.sh — push (monolithic POST ?digest= and chunked PATCH) and pull back a 4 GiB blob through a
# fresh trustyard, and report the server's peak RSS (target: every process under 150 MiB).
#
#   bench/memory.sh [--gib N] [--chunk-mib M]     (defaults: 4 GiB, 32 MiB chunks)
#
# trustyard runs as in bench/run.sh: `serve --insecure-http` with token auth on; the client logs in with an
# admin app token (Docker token flow).
# Needs ~2x the blob size free on ${TMPDIR:-/tmp}. Environment: TY_WORKERS, TRUSTYARD as in run.sh.
# Writes the numbers to bench/results/memory.txt; server log in a tmp dir (printed).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
TRUSTYARD="${TRUSTYARD:-$REPO/.venv/bin/trustyard}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/trustyard-memory.XXXXXX")"
mkdir -p "$HERE/results"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
workers=()
[[ -n "${TY_WORKERS:-}" ]] && workers=(--workers "$TY_WORKERS")
ADMIN_PASSWORD="${TRUSTYARD_ADMIN_PASSWORD:-bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
TRUSTYARD_ADMIN_PASSWORD="$ADMIN_PASSWORD" TRUSTYARD_ACCESS_LOG=false TRUSTYARD_LOG_LEVEL=warning \
    "$TRUSTYARD" serve --insecure-http --data-dir "$TMP/data" --listen "127.0.0.1:$PORT" \
    "${workers[@]+"${workers[@]}"}" >"$TMP/trustyard.log" 2>&1 &
PID=$!
cleanup() {
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    rm -rf "$TMP/data"   # the blobs are big; keep only the log
}
trap cleanup EXIT
for _ in $(seq 150); do
    code="$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/" 2>/dev/null || true)"
    [[ "$code" == 200 || "$code" == 401 ]] && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/trustyard.log" >&2; exit 1; }
    sleep 0.1
done
sleep 1
APP_TOKEN="$(curl -fsS -u "admin:$ADMIN_PASSWORD" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
    "http://127.0.0.1:$PORT/api/v1/users/admin/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
echo "memory.sh: trustyard pid $PID on :$PORT, log in $TMP" >&2
set +e
{
    echo "# bench/memory.sh $* — $(date -u +%Y-%m-%dT%H:%MZ), trustyard git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty'), workers=${TY_WORKERS:-default}"
    python3 "$HERE/memory_client.py" "http://127.0.0.1:$PORT" --pid "$PID" --user "admin:$APP_TOKEN" --json "$TMP/memory.json" "$@"
} 2>&1 | tee "$HERE/results/memory.txt"
rc=${PIPESTATUS[0]}
exit "$rc"
