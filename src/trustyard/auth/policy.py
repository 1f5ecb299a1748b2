"""The permission policy, pure: who may do what to a repository, from roles, grants, ownership, visibility.

Roles are ordered ``read < write < admin``. A grant gives a role on one repository or on a whole namespace
(every repository under ``namespace/``) to a user or a team. Users own the namespace of their own name. Site
administrators hold ``admin`` everywhere. Public repositories can be pulled by anyone, even anonymously.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

PULL, PUSH, DELETE, ALL = "pull", "push", "delete", "*"


class Role(IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return {Role.READ: "read", Role.WRITE: "read-write", Role.ADMIN: "admin"}[self]

    @classmethod
    def parse(cls, text: str) -> Role:
        for role in cls:
            if text in (role.label, role.name.lower()):
                return role
        raise ValueError(f"unknown role {text!r}: use read, read-write or admin")


#: What each role lets a caller do. Deleting (manifests, tags, blobs) is destructive: admin only.
ACTIONS: dict[Role, frozenset[str]] = {
    Role.READ: frozenset({PULL}),
    Role.WRITE: frozenset({PULL, PUSH}),
    Role.ADMIN: frozenset({PULL, PUSH, DELETE, ALL}),
}


@dataclass(frozen=True, slots=True)
class Grant:
    """``role`` on ``target``: a repository name, or a namespace when ``namespace`` is true."""

    target: str
    namespace: bool
    role: Role

    def covers(self, repository: str) -> bool:
        if self.namespace:
            return repository.startswith(self.target + "/")
        return repository == self.target


@dataclass(frozen=True, slots=True)
class Subject:
    """A user as the policy sees it: name, site-admin flag and every grant reaching them (own and teams')."""

    name: str
    admin: bool = False
    grants: tuple[Grant, ...] = field(default=())


def role_on(subject: Subject | None, repository: str) -> Role | None:
    if subject is None:
        return None
    if subject.admin or repository.startswith(subject.name + "/"):
        return Role.ADMIN
    roles = [g.role for g in subject.grants if g.covers(repository)]
    return max(roles) if roles else None


def allowed_actions(subject: Subject | None, repository: str, public: bool) -> frozenset[str]:
    """Actions ``subject`` (None: anonymous) may take on ``repository``."""
    role = role_on(subject, repository)
    actions = ACTIONS[role] if role is not None else frozenset()
    return actions | {PULL} if public else actions


def grant(subject: Subject | None, repository: str, requested: Iterable[str], public: bool) -> frozenset[str]:
    """Requested ∩ allowed: what a token may carry for ``repository``, possibly nothing; never an error."""
    return frozenset(requested) & allowed_actions(subject, repository, public)
