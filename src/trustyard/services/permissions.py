"""Permissions: what a user may do, as the permission policy (auth/policy.py) sees it. The policy subject of a
user (their admin flag and every grant reaching them, directly or through a team), the actor a password or app
token login acts as, and the pull filter a listing resolves once per request."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from trustyard.auth.policy import PULL, Grant, Role, Subject, allowed_actions
from trustyard.db.grants import GrantStore
from trustyard.db.repositories import RepositoryStore
from trustyard.db.users import UserRow
from trustyard.services.actor import Action, Actor, Credential

#: ``(repository, public) -> may pull``: an actor's pull permission, resolved once (``Permissions.pull_filter``).
PullFilter = Callable[[str, bool], bool]


class Permissions:
    def __init__(self, grants: GrantStore, repositories: RepositoryStore) -> None:
        self._grants = grants
        self._repositories = repositories

    async def subject(self, name: str) -> Subject | None:
        """The policy's view of an active user (None when unknown or deactivated)."""
        view = await self._grants.policy_view(name)  # one query: the user and every grant reaching them
        if view is None or not view.active:
            return None
        grants = tuple(Grant(target, namespace, Role(role)) for target, namespace, role in view.grants)
        return Subject(name, view.admin, grants)

    async def actor_for(self, user: UserRow, source: str | None, credential: Credential) -> Actor:
        """An actor with the user's whole permission (the admin API and web UI: not limited to token scopes),
        proved by ``credential`` (the password, or an app token)."""
        reaching = await self._grants.reaching(user.id)
        grants = tuple(Grant(target, namespace, Role(role)) for target, namespace, role in reaching)
        subject = Subject(user.name, user.admin, grants)

        def allowed(repository: str, action: Action) -> bool:
            return action.value in allowed_actions(subject, repository, public=False)

        return Actor.user(user.name, allowed, credential, source, user.admin)

    async def pullable(self, actor: Actor, names: Sequence[str]) -> list[str]:
        """Which of ``names`` the actor may pull by its whole permission (the catalog), in order."""
        may_pull = await self.pull_filter(actor)
        public = await self._repositories.public(names) if actor.token else set()
        return [n for n in names if may_pull(n, n in public)]

    async def pull_filter(self, actor: Actor) -> PullFilter:
        """Whether the actor may pull a repository by its whole permission, given the repository's visibility:
        the caller's subject (user, teams, grants) is resolved once here, so a listing checks many names
        without a query per name or per page."""
        if not actor.token:
            return lambda name, _public: actor.can(name, Action.PULL)
        subject = None if actor.is_anonymous else await self.subject(actor.name)
        if subject is not None and subject.admin:
            return lambda _name, _public: True
        return lambda name, public: PULL in allowed_actions(subject, name, public)
