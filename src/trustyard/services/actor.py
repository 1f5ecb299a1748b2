"""Who is asking, and the one check every service method makes first: ``actor.require(repository, action)``.

An ``Actor`` is built only through its constructors (``anonymous``, ``system``, ``user``, ``from_token``),
and each says what it may do; there is no default permission, so a forgotten argument denies.
"""

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


class Credential(StrEnum):
    """What the caller proved. Only the password (or the operator's shell) may change the account itself:
    an app token is a credential for the registry, and a leaked one must not outlive its revocation."""

    NONE = "none"
    PASSWORD = "password"  # Basic with the password, or a web session opened with it
    APP_TOKEN = "app-token"  # Basic with an app token (registry, token endpoint, read-only admin calls)
    REGISTRY_TOKEN = "registry-token"  # a Bearer token from /auth/token
    SYSTEM = "system"  # the operator through the CLI, and the registry's own maintenance


Permission = Callable[[str, Action], bool]


def nothing(_repository: str, _action: Action) -> bool:
    return False


def _everything(_repository: str, _action: Action) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated (or anonymous) caller and what it may do; ``allowed`` is the permission policy."""

    name: str
    allowed: Permission = field(repr=False, compare=False)
    credential: Credential
    is_anonymous: bool = False
    source: str | None = None  # client address, for audit
    #: A site administrator (accounts, settings). Registry tokens never carry this: they carry scopes.
    admin: bool = False
    #: May list the catalog (a registry token must carry ``registry:catalog:*``); it shows only what may be pulled.
    catalog: bool = False

    @classmethod
    def anonymous(cls, source: str | None, *, registry: bool = False) -> Actor:
        """Nobody in particular: may do nothing (public repositories come through a registry token).
        ``registry``: on /v2, where a refusal asks for a token rather than a login."""
        credential = Credential.REGISTRY_TOKEN if registry else Credential.NONE
        return cls("anonymous", nothing, credential, is_anonymous=True, source=source)

    @classmethod
    def claimant(cls, name: str, source: str | None) -> Actor:
        """Someone claiming to be ``name`` who has not proved it (a failed login, for the audit log): may do
        nothing."""
        return cls(name, nothing, Credential.NONE, is_anonymous=True, source=source)

    @classmethod
    def system(cls) -> Actor:
        """The operator acting through the CLI, and the registry's own maintenance: may do everything."""
        return cls("system", _everything, Credential.SYSTEM, admin=True, catalog=True)

    @classmethod
    def user(cls, name: str, allowed: Permission, credential: Credential, source: str | None, admin: bool) -> Actor:
        """A signed-in user with their whole permission (admin API, web UI), proved by ``credential``."""
        return cls(name, allowed, credential, source=source, admin=admin, catalog=True)

    @classmethod
    def from_token(cls, subject: str, allowed: Permission, catalog: bool, source: str | None) -> Actor:
        """The bearer of a registry token, or of HTTP Basic credentials on /v2/ (which carry what a token for
        the account would): what its scopes allow; ``subject`` "" for an anonymous token. Refusals ask for a
        token with more scope."""
        name = subject or "anonymous"
        return cls(name, allowed, Credential.REGISTRY_TOKEN, is_anonymous=not subject, source=source, catalog=catalog)

    @property
    def token(self) -> bool:
        """True when the caller came with a registry token: a refusal then asks for a token with more scope."""
        return self.credential is Credential.REGISTRY_TOKEN

    def can(self, repository: str, action: Action) -> bool:
        return self.allowed(repository, action)

    def require(self, repository: RepositoryName, action: Action) -> None:
        if self.allowed(repository.value, action):
            return
        scope = f"repository:{repository.value}:{action.value}"
        if self.is_anonymous:
            raise Unauthorized(f"authentication required to {action.value} {repository.value}", scope=scope)
        if self.token:
            raise InsufficientScope(f"{self.name} may not {action.value} {repository.value}", scope=scope)
        raise Denied(f"{self.name} may not {action.value} {repository.value}")

    def require_admin(self) -> None:
        """Site administration (users, organizations, settings, the audit log)."""
        if self.admin:
            return
        if self.is_anonymous:
            raise Unauthorized("authentication required")
        raise Denied(f"{self.name} is not an administrator")

    def require_system(self) -> None:
        """Operator-only work (reindexing, purging uploads): the CLI or the registry itself, never a request."""
        if self.credential is not Credential.SYSTEM:
            raise Denied(f"{self.name} may not do this: it is for the operator (trustyard CLI) only")

    def require_password(self, doing: str) -> None:
        """Changes to the account itself (its password, its app tokens) need the password, not an app token."""
        if self.credential in (Credential.PASSWORD, Credential.SYSTEM):
            return
        if self.is_anonymous:
            raise Unauthorized("authentication required")
        raise Denied(f"{doing} needs the account's password; an app token works only for the registry")
