"""Who is asking, and the one check every service method makes first: ``actor.require(repository, action)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from trustyard.errors import Denied, Unauthorized
from trustyard.oci.names import RepositoryName


class Action(StrEnum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"


Permission = Callable[[str, Action], bool]


def _everything(_repository: str, _action: Action) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated (or anonymous) caller and what it may do; ``allowed`` is the permission policy."""

    name: str
    anonymous: bool = False
    allowed: Permission = field(default=_everything, repr=False, compare=False)
    source: str | None = None  # client address, for audit

    @classmethod
    def system(cls) -> Actor:
        """The operator acting through the CLI: may do everything."""
        return cls(name="system")

    def can(self, repository: str, action: Action) -> bool:
        return self.allowed(repository, action)

    def require(self, repository: RepositoryName, action: Action) -> None:
        if self.allowed(repository.value, action):
            return
        if self.anonymous:
            raise Unauthorized(f"authentication required to {action.value} {repository.value}")
        raise Denied(f"{self.name} may not {action.value} {repository.value}")
