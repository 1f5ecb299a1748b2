#!/usr/bin/env python3
"""Buckets / containers for bench/run.sh --storage, and the object store alone.

    object_store_util.py create-bucket NAME...      # S3 (boto3; Distribution does not create buckets)
    object_store_util.py purge-s3 NAME...           # delete every object (and multipart upload), then the bucket
    object_store_util.py purge-swift NAME...        # delete every object, then the container
    object_store_util.py alone [--mib 256] [--runs 3] [--small 400]
        # the store alone, same blob size as the registry benchmark: one streamed PUT + GET over the Swift API
        # (plain HTTP, X-Auth-Token) and over the S3 API (boto3 put_object/get_object, one stream), plus small
        # 2 KiB object HEAD/GET rates (16 in flight) on both APIs — the ceiling a registry in front of it has.

Reads SWIFT_AUTH_URL, SWIFT_USERNAME, SWIFT_PASSWORD, S3_ENDPOINT_URL, AWS_* (bash scripts/object-store.sh start).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures as cf
import hashlib
import http.client
import os
import statistics
import sys
import time
import urllib.parse
import uuid

MiB = 1 << 20


def s3():
    import boto3
    from botocore.config import Config

    c = boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
    )

    def md5(params, **_):
        body = params["body"] if isinstance(params["body"], bytes) else params["body"].encode()
        params["headers"]["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()

    c.meta.events.register("before-call.s3.DeleteObjects", md5)
    return c


def swift_auth() -> tuple[str, str]:
    u = urllib.parse.urlsplit(os.environ["SWIFT_AUTH_URL"])
    c = http.client.HTTPConnection(u.hostname, u.port)
    c.request(
        "GET", u.path, headers={"X-Auth-User": os.environ["SWIFT_USERNAME"], "X-Auth-Key": os.environ["SWIFT_PASSWORD"]}
    )
    r = c.getresponse()
    r.read()
    assert r.status < 300, r.status
    return r.getheader("X-Storage-Url"), r.getheader("X-Auth-Token")


class Swift:
    def __init__(self):
        self.url, self.tok = swift_auth()
        u = urllib.parse.urlsplit(self.url)
        self.host, self.port, self.base = u.hostname, u.port, u.path

    def req(self, method, path, body=None, headers=None, sink=False):
        c = http.client.HTTPConnection(self.host, self.port, timeout=600)
        h = {"X-Auth-Token": self.tok, **(headers or {})}
        c.request(method, self.base + path, body=body, headers=h)
        r = c.getresponse()
        n = 0
        if sink:
            buf = bytearray(MiB)
            while k := r.readinto(buf):
                n += k
        else:
            data = r.read()
            n = len(data)
        c.close()
        return r.status, n, (None if sink else data)


def purge_swift(names):
    sw = Swift()
    q = urllib.parse.quote
    for name in names:
        container = q(name)
        while True:
            st, _, data = sw.req("GET", f"/{q(name)}?format=txt&limit=1000")
            if st == 404:
                break
            objs = [o for o in data.decode().splitlines() if o]
            if not objs:
                break
            with cf.ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda o, c=container: sw.req("DELETE", f"/{c}/{q(o)}"), objs))
        sw.req("DELETE", f"/{q(name)}")
        sw.req("DELETE", f"/{q(name)}+segments")


def purge_s3(names):
    c = s3()
    for b in names:
        try:
            for up in c.list_multipart_uploads(Bucket=b).get("Uploads", []):
                c.abort_multipart_upload(Bucket=b, Key=up["Key"], UploadId=up["UploadId"])
            p = c.get_paginator("list_objects_v2")
            for page in p.paginate(Bucket=b):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    c.delete_objects(Bucket=b, Delete={"Objects": keys, "Quiet": True})
            c.delete_bucket(Bucket=b)
        except Exception as e:  # best effort
            print(f"purge-s3 {b}: {e}", file=sys.stderr)
    purge_swift([f"{b}+segments" for b in names])


class Gen:
    """File-like: SIZE bytes from a 1 MiB block, no memory growth."""

    def __init__(self, size):
        self.left, self.block = size, os.urandom(MiB)

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        k = min(self.left, MiB if n is None or n < 0 else min(n, MiB))
        self.left -= k
        return self.block[:k]


def alone(a):
    size = a.mib * MiB
    name = f"bench-alone-{uuid.uuid4().hex[:8]}"
    sw = Swift()
    sw.req("PUT", f"/{name}")
    c = s3()
    c.create_bucket(Bucket=name + "-s3")
    res: dict[str, list[float]] = {}
    big = os.urandom(MiB) * a.mib  # boto3 needs a seekable body (it checksums it first): bytes, client side only
    for _ in range(a.runs):
        t = time.perf_counter()
        st, _, _ = sw.req("PUT", f"/{name}/big", body=Gen(size), headers={"Content-Length": str(size)})
        assert st == 201, st
        res.setdefault("swift_put_MBps", []).append(size / (time.perf_counter() - t) / 1e6)
        t = time.perf_counter()
        st, n, _ = sw.req("GET", f"/{name}/big", sink=True)
        assert n == size
        res.setdefault("swift_get_MBps", []).append(size / (time.perf_counter() - t) / 1e6)
        t = time.perf_counter()
        c.put_object(Bucket=name + "-s3", Key="big", Body=big)
        res.setdefault("s3_put_MBps", []).append(size / (time.perf_counter() - t) / 1e6)
        t = time.perf_counter()
        body = c.get_object(Bucket=name + "-s3", Key="big")["Body"]
        n = 0
        while chunk := body.read(MiB):
            n += len(chunk)
        assert n == size
        res.setdefault("s3_get_MBps", []).append(size / (time.perf_counter() - t) / 1e6)
    del big
    small = os.urandom(2048)
    sw.req("PUT", f"/{name}/small", body=small)
    c.put_object(Bucket=name + "-s3", Key="small", Body=small)

    def rate(fn):
        t = time.perf_counter()
        with cf.ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda _: fn(), range(a.small)))
        return a.small / (time.perf_counter() - t)

    for _ in range(a.runs):
        res.setdefault("swift_head_2KiB_c16_rps", []).append(rate(lambda: sw.req("HEAD", f"/{name}/small")))
        res.setdefault("swift_get_2KiB_c16_rps", []).append(rate(lambda: sw.req("GET", f"/{name}/small")))
        res.setdefault("s3_head_2KiB_c16_rps", []).append(rate(lambda: c.head_object(Bucket=name + "-s3", Key="small")))
        res.setdefault("s3_get_2KiB_c16_rps", []).append(
            rate(lambda: c.get_object(Bucket=name + "-s3", Key="small")["Body"].read())
        )
    purge_swift([name])
    purge_s3([name + "-s3"])
    print(f"# object store alone: {a.mib} MiB blob, {a.runs} runs (median min..max); 2 KiB objects, 16 in flight")
    for k, v in res.items():
        print(f"{k:28s} {statistics.median(v):9.1f}  {min(v):.1f}..{max(v):.1f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["create-bucket", "purge-s3", "purge-swift", "alone"])
    p.add_argument("names", nargs="*")
    p.add_argument("--mib", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--small", type=int, default=400)
    a = p.parse_args()
    if a.cmd == "create-bucket":
        c = s3()
        for n in a.names:
            c.create_bucket(Bucket=n)
    elif a.cmd == "purge-s3":
        purge_s3(a.names)
    elif a.cmd == "purge-swift":
        purge_swift(a.names)
    else:
        alone(a)


if __name__ == "__main__":
    main()
