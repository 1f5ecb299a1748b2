"""Docker token scopes: ``repository:team/app:pull,push``, ``registry:catalog:*``, parsed and printed.

A scope string is ``type:name:actions``; the name may itself hold colons (a registry host with a port in
some clients), so the type is cut at the first colon and the actions at the last.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"
ALL = "*"
KNOWN_ACTIONS = ("pull", "push", "delete", ALL)


@dataclass(frozen=True, slots=True)
class Scope:
    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def as_claim(self) -> dict[str, object]:
        """One entry of the token's ``access`` claim (the Docker token spec's shape)."""
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


CATALOG_SCOPE = Scope(REGISTRY, CATALOG, frozenset({ALL}))


def parse_scope(text: str) -> Scope | None:
    """One scope, or None for text that is not one (ignored, never an error: clients send odd scopes)."""
    kind, sep, rest = text.strip().partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    wanted = frozenset(a for a in actions.split(",") if a in KNOWN_ACTIONS)
    if not wanted:
        return None
    return Scope(kind, name, wanted)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Every scope in ``values``; each value may hold several separated by spaces (the OAuth2 form)."""
    found: dict[tuple[str, str], set[str]] = {}
    for value in values:
        for part in value.split():
            scope = parse_scope(part)
            if scope is not None:
                found.setdefault((scope.type, scope.name), set()).update(scope.actions)
    return [Scope(kind, name, frozenset(actions)) for (kind, name), actions in found.items()]


def format_scopes(scopes: Iterable[Scope]) -> str:
    return " ".join(str(s) for s in scopes)
