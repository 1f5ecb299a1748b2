#!/usr/bin/env python3
"""Push and pull one big blob through a registry in constant client memory, and sample the server's RSS.

    memory_client.py URL --pid PID [--gib 4] [--chunk-mib 32] [--repo bench/memory] [--user U:P]

1. monolithic: POST /v2/<repo>/blobs/uploads/?digest=D with the whole body (digest computed in a first pass
   over the same generated stream, since the protocol needs it up front).
2. chunked: POST, PATCH chunks of --chunk-mib with Content-Range, hashing while sending, PUT ?digest=D.
3. pull both back with GET, hashing while reading; the digests must match.
Content is generated on the fly (1 MiB blocks: an 8-byte counter + a fixed random block, different seed per
upload), never held whole in memory. A thread samples VmRSS of PID and all its descendants every 50 ms; at the
end VmHWM is read too. Prints one line per phase and the peaks (max single process, max summed tree).
With --user, a 401 Bearer challenge from GET /v2/ is answered with the Docker token flow (GET realm with Basic
U:P, scope repository:REPO:pull,push,delete); the token is renewed every 4 minutes (trustyard's live 5).
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

BLOCK = 1 << 20


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def tree_of(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(_read(f"/proc/{d}/stat").rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kib(pid: int, field: str) -> int:
    try:
        for line in _read(f"/proc/{pid}/status").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.procs = tree_of(pid)
        self.start_kib = {p: status_kib(p, "VmRSS") for p in self.procs}
        for p in self.procs:  # reset VmHWM so it covers this run only
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
        self.peak_proc_kib: dict[int, int] = {}
        self.peak_sum_kib = 0

    def run(self) -> None:
        last_scan = time.monotonic()
        while not self.stop.wait(0.05):
            if time.monotonic() - last_scan > 1:
                self.procs, last_scan = tree_of(self.pid), time.monotonic()
            total = 0
            for p in self.procs:
                kib = status_kib(p, "VmRSS")
                total += kib
                self.peak_proc_kib[p] = max(self.peak_proc_kib.get(p, 0), kib)
            self.peak_sum_kib = max(self.peak_sum_kib, total)

    def finish(self) -> dict:
        self.stop.set()
        self.join()
        procs = tree_of(self.pid)
        hwm = {p: status_kib(p, "VmHWM") for p in procs}
        for p, kib in hwm.items():
            self.peak_proc_kib[p] = max(self.peak_proc_kib.get(p, 0), kib)
        return {
            "procs": len(procs),
            "rss_at_start_mib": {p: round(k / 1024, 1) for p, k in self.start_kib.items()},
            "peak_per_process_mib": {p: round(k / 1024, 1) for p, k in sorted(self.peak_proc_kib.items())},
            "peak_max_process_mib": round(max(self.peak_proc_kib.values()) / 1024, 1),
            "peak_tree_sum_mib": round(max(self.peak_sum_kib, sum(hwm.values())) / 1024, 1),
        }


def blocks(seed: int, size: int):
    base = bytearray(hashlib.shake_256(f"trustyard-memory-{seed}".encode()).digest(BLOCK))
    sent, i = 0, 0
    while sent < size:
        n = min(BLOCK, size - sent)
        base[0:8] = i.to_bytes(8, "little")
        yield bytes(base[:n])
        sent += n
        i += 1


def digest_of(seed: int, size: int) -> str:
    h = hashlib.sha256()
    for b in blocks(seed, size):
        h.update(b)
    return "sha256:" + h.hexdigest()


class Hashing:
    """Wrap a block generator: hash every byte as it is handed to the socket."""

    def __init__(self, it, h) -> None:
        self.it, self.h = it, h

    def __iter__(self):
        for b in self.it:
            self.h.update(b)
            yield b


def take(it, n: int):
    """Yield exactly n bytes from an iterator of blocks (pushing back the remainder)."""
    while n > 0:
        b = next(it)
        if len(b) > n:
            it.pushback(b[n:])
            b = b[:n]
        n -= len(b)
        yield b


class Pushback:
    def __init__(self, it) -> None:
        self.it, self.back = iter(it), []

    def __iter__(self):
        return self

    def __next__(self):
        return self.back.pop() if self.back else next(self.it)

    def pushback(self, b) -> None:
        self.back.append(b)


class Client:
    def __init__(self, url: str, user: str | None = None, repo: str = "") -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.user, self.repo = user, repo
        self.token, self.token_t, self.challenge = None, 0.0, None
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        conn.request("GET", "/v2/")
        r = conn.getresponse()
        r.read()
        www = r.getheader("WWW-Authenticate", "")
        if r.status == 401 and www.lower().startswith("bearer"):
            import re

            self.challenge = dict(re.findall(r'(\w+)="([^"]*)"', www))

    def auth(self) -> dict:
        if not self.challenge:
            return {}
        if self.token is None or time.monotonic() - self.token_t > 240:
            import base64

            q = urllib.parse.urlencode(
                {"service": self.challenge.get("service", ""), "scope": f"repository:{self.repo}:pull,push,delete"}
            )
            ru = urllib.parse.urlsplit(self.challenge["realm"])
            conn = http.client.HTTPConnection(ru.hostname, ru.port or 80, timeout=60)
            h = {"Authorization": "Basic " + base64.b64encode((self.user or "").encode()).decode()} if self.user else {}
            conn.request("GET", f"{ru.path}?{q}", headers=h)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                raise SystemExit(f"token: HTTP {r.status} {data[:300]!r}")
            j = json.loads(data)
            self.token, self.token_t = j.get("token") or j["access_token"], time.monotonic()
        return {"Authorization": "Bearer " + self.token}

    def request(self, method: str, path: str, body=None, headers=None, expect=(200,), read=True):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        conn.request(method, path, body=body, headers={**(headers or {}), **self.auth()})
        resp = conn.getresponse()
        data = resp.read() if read else None
        if resp.status not in expect:
            raise SystemExit(f"{method} {path}: HTTP {resp.status} {data[:500] if data else ''!r}")
        return conn, resp, data


def push_monolithic(c: Client, repo: str, seed: int, size: int) -> tuple[str, float]:
    digest = digest_of(seed, size)
    h = hashlib.sha256()
    t0 = time.monotonic()
    c.request(
        "POST",
        f"/v2/{repo}/blobs/uploads/?digest={digest}",
        body=Hashing(blocks(seed, size), h),
        headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        expect=(201,),
    )
    dt = time.monotonic() - t0
    assert "sha256:" + h.hexdigest() == digest
    return digest, dt


def push_chunked(c: Client, repo: str, seed: int, size: int, chunk: int) -> tuple[str, float, int]:
    h = hashlib.sha256()
    src = Pushback(Hashing(blocks(seed, size), h))
    t0 = time.monotonic()
    _, resp, _ = c.request("POST", f"/v2/{repo}/blobs/uploads/", expect=(202,))
    loc = resp.getheader("Location")
    off, n = 0, 0
    while off < size:
        m = min(chunk, size - off)
        _, resp, _ = c.request(
            "PATCH",
            urllib.parse.urlsplit(loc).path
            + ("?" + urllib.parse.urlsplit(loc).query if urllib.parse.urlsplit(loc).query else ""),
            body=take(src, m),
            headers={
                "Content-Length": str(m),
                "Content-Range": f"{off}-{off + m - 1}",
                "Content-Type": "application/octet-stream",
            },
            expect=(202,),
        )
        loc = resp.getheader("Location") or loc
        off += m
        n += 1
    digest = "sha256:" + h.hexdigest()
    u = urllib.parse.urlsplit(loc)
    sep = "&" if u.query else "?"
    c.request(
        "PUT",
        f"{u.path}{'?' + u.query if u.query else ''}{sep}digest={digest}",
        headers={"Content-Length": "0"},
        expect=(201,),
    )
    return digest, time.monotonic() - t0, n


def pull(c: Client, repo: str, digest: str, size: int) -> float:
    t0 = time.monotonic()
    conn, resp, _ = c.request("GET", f"/v2/{repo}/blobs/{digest}", read=False)
    if resp.status != 200:
        raise SystemExit(f"GET blob: HTTP {resp.status}")
    h, buf, got = hashlib.sha256(), bytearray(BLOCK), 0
    mv = memoryview(buf)
    while True:
        n = resp.readinto(buf)
        if not n:
            break
        h.update(mv[:n])
        got += n
    conn.close()
    dt = time.monotonic() - t0
    if got != size or "sha256:" + h.hexdigest() != digest:
        raise SystemExit(f"pull mismatch: got {got} bytes, sha256:{h.hexdigest()} != {digest}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--gib", type=float, default=4.0)
    ap.add_argument("--chunk-mib", type=int, default=32)
    ap.add_argument("--repo", default="bench/memory")
    ap.add_argument("--json")
    ap.add_argument("--user", help="USER:PASS for the Docker token flow (trustyard: admin:<app token>)")
    a = ap.parse_args()
    size = int(a.gib * (1 << 30))
    c = Client(a.url, a.user, a.repo)
    seed = int(time.time())
    sampler = RssSampler(a.pid)
    sampler.start()
    res: dict = {"size_bytes": size, "chunk_mib": a.chunk_mib}
    mb = size / 1e6

    d1, t = push_monolithic(c, a.repo, seed, size)
    res["push_monolithic"] = {"s": round(t, 1), "MB/s": round(mb / t)}
    print(f"push monolithic  {a.gib:g} GiB  {t:6.1f} s  {mb / t:6.0f} MB/s  {d1}", flush=True)
    d2, t, n = push_chunked(c, a.repo, seed + 1, size, a.chunk_mib << 20)
    res["push_chunked"] = {"s": round(t, 1), "MB/s": round(mb / t), "patches": n}
    print(
        f"push chunked     {a.gib:g} GiB  {t:6.1f} s  {mb / t:6.0f} MB/s  {n} PATCHes of {a.chunk_mib} MiB  {d2}",
        flush=True,
    )
    for name, d in (("monolithic", d1), ("chunked", d2)):
        t = pull(c, a.repo, d, size)
        res[f"pull_{name}"] = {"s": round(t, 1), "MB/s": round(mb / t)}
        print(f"pull {name:<11} {a.gib:g} GiB  {t:6.1f} s  {mb / t:6.0f} MB/s  digest verified", flush=True)
    for d in (d1, d2):  # best effort cleanup
        with contextlib.suppress(SystemExit):
            c.request("DELETE", f"/v2/{a.repo}/blobs/{d}", expect=(202, 404, 405))
    res["rss"] = sampler.finish()
    r = res["rss"]
    print(
        f"server peak RSS: max single process {r['peak_max_process_mib']} MiB, whole tree summed "
        f"{r['peak_tree_sum_mib']} MiB ({r['procs']} processes; per process {r['peak_per_process_mib']}, "
        f"at start {r['rss_at_start_mib']})"
    )
    ok = r["peak_max_process_mib"] < 150
    print(f"target: every process < 150 MiB -> {'PASS' if ok else 'FAIL'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
