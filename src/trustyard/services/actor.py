"""Who is asking, and the one check every service method makes first: ``actor.require(repository, action)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from trustyard.errors import Denied, InsufficientScope, Unauthorized
from trustyard.oci.names import RepositoryName


class Action(StrEnum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    ADMIN = "*"  # manage the repository: visibility, grants on it, deleting it whole


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
    #: A site administrator (accounts, settings). Registry tokens never carry this: they carry scopes.
    admin: bool = False
    #: True when the caller came with a registry token (or HTTP Basic on /v2/, which carries what a token would):
    #: a refusal then asks for a token with more scope.
    token: bool = False
    #: May list the catalog (a registry token must carry ``registry:catalog:*``); it shows only what may be pulled.
    catalog: bool = True

    @classmethod
    def system(cls) -> Actor:
        """The operator acting through the CLI: may do everything."""
        return cls(name="system", admin=True)

    def can(self, repository: str, action: Action) -> bool:
        return self.allowed(repository, action)

    def require(self, repository: RepositoryName, action: Action) -> None:
        if self.allowed(repository.value, action):
            return
        scope = f"repository:{repository.value}:{action.value}"
        if self.anonymous:
            raise Unauthorized(f"authentication required to {action.value} {repository.value}", scope=scope)
        if self.token:
            raise InsufficientScope(f"{self.name} may not {action.value} {repository.value}", scope=scope)
        raise Denied(f"{self.name} may not {action.value} {repository.value}")

    def require_admin(self) -> None:
        """Site administration (users, organizations, settings, the audit log)."""
        if self.admin:
            return
        if self.anonymous:
            raise Unauthorized("authentication required")
        raise Denied(f"{self.name} is not an administrator")
