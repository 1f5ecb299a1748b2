"""Untrusted JSON: size and nesting bounded before parsing; every refusal a JsonRejected, never a crash."""

from __future__ import annotations

import json

import pytest

from trustyard.oci.jsontext import JsonRejected, load, within_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ("[[], {}]", 2),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[[[[[[[["}', 1),  # brackets in strings nest nothing
        ('{"a": "\\"[[[[[["}', 1),  # nor after an escaped quote
        ('{"a": "\\\\", "b": [[[1]]]}', 4),  # an escaped backslash ends before the closing quote
        ("1", 0),
    ],
)
def test_depth_is_exact_for_json(text: str, depth: int) -> None:
    assert within_depth(text.encode(), depth)
    if depth:
        assert not within_depth(text.encode(), depth - 1)


def test_deep_nesting_is_refused_before_the_parser_recurses() -> None:
    with pytest.raises(JsonRejected, match="nests deeper than 64 levels"):
        load(b"[" * 5000, max_bytes=1 << 20)
    with pytest.raises(JsonRejected, match="nests deeper"):
        load(b'{"a":' * 5000 + b"1" + b"}" * 5000, max_bytes=1 << 20)


def test_unbalanced_brackets_never_reach_the_recursion_limit() -> None:
    for payload in (b"[" * 65 + b"]" * 3, b"]" * 5000 + b"[" * 5000, b"[{" * 2000):
        with pytest.raises(JsonRejected):
            load(payload, max_bytes=1 << 20)


def test_size_is_bounded() -> None:
    with pytest.raises(JsonRejected, match="limit is 10"):
        load(b'"' + b"a" * 20 + b'"', max_bytes=10)


def test_not_json_says_where() -> None:
    with pytest.raises(JsonRejected, match="not valid JSON"):
        load(b'{"a": [1, 2}', max_bytes=100)
    with pytest.raises(JsonRejected, match="not valid JSON"):
        load(b"\xff\xfe", max_bytes=100)


def test_what_json_accepts_load_accepts() -> None:
    document = {"schemaVersion": 2, "layers": [{"annotations": {"k": 'v "[{'}}], "n": [[1, 2], [3]]}
    payload = json.dumps(document).encode()
    assert load(payload, max_bytes=len(payload)) == document


def test_hostile_documents_are_answered() -> None:
    """Millions of quotes or brackets: the pre-scan is a few linear passes in C (a backtracking regex over
    escaped quotes would be quadratic and never finish on these)."""
    for payload in (b'"' + b'\\"' * 2_000_000, b"[]" * 2_000_000, b'"' * 4_000_000):
        with pytest.raises(JsonRejected):
            load(payload, max_bytes=5 << 20)
