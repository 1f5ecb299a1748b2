#!/usr/bin/env bash
# bench/profile.sh — where trustyard's CPU goes on small requests.
#
#   bench/profile.sh [SECONDS] [URL_PATH_KIND]   (default 15 s, kind: manifest|head|tags|catalog|push)
#
# Starts a fresh trustyard (access log off; `--insecure-http` with token auth on, as bench/run.sh: every
# request carries a Bearer token fetched once with the admin password), pushes one tiny image (1 KiB layer, config, manifest tagged
# latest), then runs wrk (16 connections, GET /v2/bench/profile/manifests/latest, or tags/list) while
# `py-spy record --subprocesses` samples every Granian process, and prints the hottest functions by self
# time and by inclusive time (bench/pyspy_top.py). Needs py-spy: .venv/bin/pip install py-spy.
# Raw collapsed stacks and a flame graph (SVG) stay in the printed tmp dir.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
TRUSTYARD="${TRUSTYARD:-$REPO/.venv/bin/trustyard}"
PYSPY="${PYSPY:-$REPO/.venv/bin/py-spy}"
SECS="${1:-15}"
KIND="${2:-manifest}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/trustyard-profile.XXXXXX")"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
workers=()
[[ -n "${TY_WORKERS:-}" ]] && workers=(--workers "$TY_WORKERS")
PW="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TRUSTYARD_ADMIN_PASSWORD="$PW" TRUSTYARD_ACCESS_LOG=false TRUSTYARD_LOG_LEVEL=warning \
    "$TRUSTYARD" serve --insecure-http --data-dir "$TMP/data" --listen "127.0.0.1:$PORT" \
    "${workers[@]+"${workers[@]}"}" >"$TMP/trustyard.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; sleep 1; kill -KILL $PID 2>/dev/null || true' EXIT
for _ in $(seq 150); do
    [[ "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/v2/" 2>/dev/null || true)" == 401 ]] && break; sleep 0.1
done
sleep 1
TOKEN="$(curl -fsS -u "admin:$PW" "$URL/auth/token?service=trustyard&scope=repository:bench/profile:pull,push&scope=registry:catalog:*" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
AUTH=(-H "Authorization: Bearer $TOKEN")
TOKEN="$TOKEN" python3 - "$URL" <<'PY'
import hashlib, http.client, json, os, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1]); repo = "bench/profile"
def req(m, p, body=b"", h=None, ok=(200, 201, 202)):
    c = http.client.HTTPConnection(u.hostname, u.port)
    c.request(m, p, body=body, headers={**(h or {}), "Authorization": "Bearer " + os.environ["TOKEN"]})
    r = c.getresponse(); r.read(); assert r.status in ok, (m, p, r.status); return r
def blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    req("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data, {"Content-Type": "application/octet-stream"})
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(data)}
layer = blob(b"x" * 1024)
cfg = blob(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": cfg, "layers": [layer]}).encode()
for tag in ["latest"] + [f"t{i}" for i in range(9)]:
    req("PUT", f"/v2/{repo}/manifests/{tag}", man, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
open("/dev/stderr", "w").write(f"pushed {repo}:latest + 9 tags, layer {layer['digest']}\n")
PY
case "$KIND" in
    manifest) P="/v2/bench/profile/manifests/latest"; H=(-H "Accept: application/vnd.oci.image.manifest.v1+json") ;;
    tags) P="/v2/bench/profile/tags/list"; H=() ;;
    catalog) P="/v2/_catalog?n=100"; H=() ;;
    head) P="/v2/bench/profile/manifests/latest"; H=(-s "$HERE/head.lua" -H "Accept: application/vnd.oci.image.manifest.v1+json") ;;
    push) P="" ;;
    *) echo "kind: manifest|head|tags|catalog|push" >&2; exit 2 ;;
esac
[[ -n "$P" ]] && wrk -t2 -c16 -d3s "${AUTH[@]}" "${H[@]+"${H[@]}"}" "$URL$P" >/dev/null   # warm up
"$PYSPY" record --subprocesses --pid "$PID" --rate 250 --duration "$SECS" ${PYSPY_ARGS:-} --format raw -o "$TMP/stacks.txt" \
    --nonblocking >"$TMP/pyspy.log" 2>&1 &
SPY=$!
sleep 1
if [[ -n "$P" ]]; then
    wrk -t2 -c16 -d"$((SECS - 2))s" --latency "${AUTH[@]}" "${H[@]+"${H[@]}"}" "$URL$P" | tee "$TMP/wrk.txt"
else   # push: 1 GiB monolithic + 1 GiB in 8 MiB PATCHes, pulled back (memory_client.py)
    python3 "$HERE/memory_client.py" "$URL" --pid "$PID" --gib 1 --chunk-mib 8 --user "admin:$PW" || true
fi
wait "$SPY" || { cat "$TMP/pyspy.log" >&2; }
python3 "$HERE/pyspy_top.py" "$TMP/stacks.txt" | tee "$TMP/top.txt"
echo "profile.sh: raw stacks in $TMP/stacks.txt" >&2
