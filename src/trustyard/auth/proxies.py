"""The client's address behind reverse proxies: ``X-Forwarded-For`` is believed only when the direct peer is
one of the configured ``trusted_proxies``; otherwise anybody could claim any address (and dodge, or aim, the
per-address slowdown of password guessing)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.5``, ``10.0.0.0/8``, ``::1``: ValueError naming the entry that is neither an address nor a network."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or network (write 10.0.0.5 or 10.0.0.0/8)") from None
    return tuple(networks)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The address of the client: walking ``X-Forwarded-For`` from the right (the hop our proxy added) past
    trusted proxies, the first address that is not one; the peer itself when it is not a trusted proxy."""
    if peer is None or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a garbled hop: the last proxy we trust is all we know
        address = hop
        if not _trusted(hop, trusted):
            return hop
    return address
