#!/usr/bin/env python3
"""Summarise py-spy's raw (collapsed) stacks: top functions by self and by inclusive samples.

    pyspy_top.py stacks.txt [N]

Idle samples (threads parked in the event loop's selector or in a thread pool's queue wait) are counted
separately, so percentages are of busy samples.
"""

import collections
import re
import sys


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25
    self_c, incl_c, mod_c = collections.Counter(), collections.Counter(), collections.Counter()
    busy = idle = 0
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        c = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        leaf = frames[-1]
        if "select (selectors" in leaf or "wait (threading" in leaf or leaf.startswith("_worker (concurrent"):
            idle += c
            continue
        busy += c
        self_c[_fn(leaf)] += c
        seen = set()
        for f in frames:
            k = _fn(f)
            if k not in seen:
                incl_c[k] += c
                seen.add(k)
        mods = set()
        for f in frames:
            m = _module(f)
            if m not in mods:
                mod_c[m] += c
                mods.add(m)
    if not busy:
        print("no busy samples")
        return
    print(f"busy samples {busy}, idle samples {idle} ({100 * busy / (busy + idle):.0f}% busy)")
    print(f"\n== top {n} by self time ==")
    for k, c in self_c.most_common(n):
        print(f"{100 * c / busy:5.1f}%  {k}")
    print(f"\n== top {n} by inclusive time ==")
    for k, c in incl_c.most_common(n):
        print(f"{100 * c / busy:5.1f}%  {k}")
    print("\n== inclusive time by package (a sample counts once per package on its stack) ==")
    for k, c in mod_c.most_common(20):
        print(f"{100 * c / busy:5.1f}%  {k}")


def _fn(frame: str) -> str:
    # "name (path/to/file.py:LINE)" -> "name (file path without line)"
    return re.sub(r":\d+\)$", ")", frame)


def _module(frame: str) -> str:
    m = re.search(r"\(([^:)]+)", frame)
    if not m:
        return frame
    p = m.group(1)
    p = re.sub(r".*site-packages/", "", p)
    p = re.sub(r".*/src/", "", p)
    p = re.sub(r".*/lib/python3\.\d+/", "stdlib/", p)
    parts = p.split("/")
    return "/".join(parts[:2]) if parts[0] in ("trustyard", "stdlib") else parts[0]


if __name__ == "__main__":
    main()
