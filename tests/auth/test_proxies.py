"""The client address behind proxies: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import pytest

from trustyard.auth.proxies import client_address, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "2001:db8::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.7", ["203.0.113.9"], "198.51.100.7"),  # not our proxy: its header is anybody's claim
        ("10.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        ("10.0.0.1", ["1.2.3.4, 203.0.113.9, 10.9.9.9"], "203.0.113.9"),  # spoofed left part ignored
        ("10.0.0.1", ["1.2.3.4", "203.0.113.9"], "203.0.113.9"),  # several headers read as one list
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["not-an-address"], "10.0.0.1"),
        ("10.0.0.1", ["10.2.2.2"], "10.2.2.2"),  # only proxies all the way: the farthest one
        ("2001:db8::1", ["2001:db8::99"], "2001:db8::99"),
        (None, ["203.0.113.9"], None),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str | None) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("10.0.0.1", ["203.0.113.9"], ()) == "10.0.0.1"


def test_a_bad_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks(["10.0.0.300"])
