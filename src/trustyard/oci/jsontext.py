"""Untrusted JSON in, Python values out, with its size and nesting bounded before the parser runs.

``json.loads`` recurses once per ``[`` or ``{``: five thousand of them in a request body end in a
RecursionError, which is a 500 and a traceback for every such request. Manifests and admin API bodies are
parsed here instead, and each edge turns ``JsonRejected`` into its own error code (MANIFEST_INVALID, 400).
"""

from __future__ import annotations

import json
from typing import Any

#: Deeper than any manifest or API body needs (an image index with platforms and annotations is 5 deep).
MAX_DEPTH = 64

# Everything but brackets goes; braces count as brackets (a mismatch is the parser's to report).
_KEEP_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonRejected(ValueError):
    """The text is not JSON, or it is larger or deeper than allowed; the message says which."""


def within_depth(payload: bytes, max_depth: int) -> bool:
    """Whether arrays and objects in ``payload`` nest at most ``max_depth`` deep (exact for valid JSON).

    Linear, in C: drop escapes, then string contents (between quote pairs), then all but the brackets; each
    round then removes every innermost ``[]``, so the rounds needed are the depth.
    """
    if payload.count(b"[") + payload.count(b"{") <= max_depth:
        return True
    unescaped = payload.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    brackets = outside_strings.translate(_KEEP_BRACKETS, _NOT_BRACKETS)
    for _ in range(max_depth):
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets = shorter
    # Left over: deeper nesting (it still holds a pair), or brackets that do not balance. Those are not JSON
    # and the parser says where; with at most max_depth of them it recurses at most twice max_depth deep.
    return b"[]" not in brackets and len(brackets) <= max_depth


def load(payload: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """``payload`` parsed, or JsonRejected when it is over ``max_bytes``, nested deeper than ``max_depth``, or
    not JSON at all."""
    if len(payload) > max_bytes:
        raise JsonRejected(f"the JSON document is {len(payload)} bytes; the limit is {max_bytes}")
    if not within_depth(payload, max_depth):
        raise JsonRejected(f"the JSON document nests deeper than {max_depth} levels, the limit")
    try:
        return json.loads(payload)
    except RecursionError:  # not reachable after the depth check; kept so no input can ever become a 500
        raise JsonRejected(f"the JSON document nests deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRejected(f"not valid JSON: {exc}") from None
