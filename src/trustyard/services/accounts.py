"""Accounts: users, organizations, teams, grants and app tokens; the policy subject of a user.

Site administrators manage users, organizations and teams. Grants on a repository may also be given by
that repository's admins. Every user manages their own password and app tokens, with their password (an app
token cannot change the account that issued it). A deleted user's or organization's name is reserved until an
administrator releases it, so nobody inherits its repositories or grants. Each change is audited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trustyard.auth import passwords
from trustyard.auth.policy import PULL, Grant, Role, Subject, allowed_actions
from trustyard.db.app_tokens import AppTokenRow, AppTokenStore
from trustyard.db.grants import GrantRow, GrantStore
from trustyard.db.namespaces import NamespaceStore, ReservedName
from trustyard.db.organizations import OrganizationStore
from trustyard.db.repositories import RepositoryStore
from trustyard.db.teams import TeamRow, TeamStore
from trustyard.db.users import UserRow, UserStore
from trustyard.errors import AlreadyExists, Denied, InvalidRequest, NotFound
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Action, Actor, Credential
from trustyard.services.audit import Audit
from trustyard.services.password_checks import PasswordChecks
from trustyard.services.policies import TagPolicies
from trustyard.services.repositories import remove_repository
from trustyard.storage.driver import StorageDriver

ADMIN = "admin"
OWNERS = "owners"  # every organization's first team: admin on the organization's namespace
__all__ = [
    "Accounts",
    "AppTokenRow",
    "CreatedToken",
    "GrantRow",
    "ReservedName",
    "TeamRow",
    "UserRow",
]  # rows the edges render
RESERVED = frozenset({"anonymous", "system"})  # names actors use for themselves
#: ``(repository, public) -> may pull``: an actor's pull permission, resolved once (``Accounts.pull_filter``).
PullFilter = Callable[[str, bool], bool]
_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def check_name(kind: str, name: str) -> str:
    """User, organization and team names are one repository path component (they name namespaces)."""
    if not _NAME.fullmatch(name) or len(name) > 64:
        raise InvalidRequest(
            f"invalid {kind} name {name[:80]!r}: use lower-case letters, digits and . _ - between them (at most 64)"
        )
    if name in RESERVED:
        raise InvalidRequest(f"{name} is reserved")
    return name


@dataclass(frozen=True, slots=True)
class CreatedToken:
    row: AppTokenRow
    secret: str  # shown once


@dataclass(frozen=True, slots=True)
class Target:
    """What a grant applies to: ``team/app`` (a repository) or ``team/*`` (the namespace ``team``)."""

    name: str
    namespace: bool

    @classmethod
    def parse(cls, text: str) -> Target:
        if text.endswith("/*"):
            return cls(check_name("namespace", text[:-2]), True)
        return cls(RepositoryName.parse(text).value, False)

    def __str__(self) -> str:
        return f"{self.name}/*" if self.namespace else self.name

    @property
    def probe(self) -> str:
        """A repository name the target covers, to ask the policy about the whole target."""
        return f"{self.name}/" if self.namespace else self.name


class Accounts:
    def __init__(
        self,
        users: UserStore,
        organizations: OrganizationStore,
        teams: TeamStore,
        grants: GrantStore,
        app_tokens: AppTokenStore,
        namespaces: NamespaceStore,
        repositories: RepositoryStore,
        storage: StorageDriver,
        policies: TagPolicies,
        audit: Audit,
        password_checks: PasswordChecks,
    ) -> None:
        """``policies`` keep a namespace deleted with its repositories from taking immutable tags along."""
        self._users = users
        self._organizations = organizations
        self._teams = teams
        self._grants = grants
        self._app_tokens = app_tokens
        self._namespaces = namespaces
        self._repositories = repositories
        self._storage = storage
        self._policies = policies
        self._audit = audit
        self._password_checks = password_checks

    # Policy ---------------------------------------------------------------------------------------------

    async def subject(self, name: str) -> Subject | None:
        """The policy's view of an active user (None when unknown or deactivated)."""
        view = await self._grants.policy_view(name)  # one query: the user and every grant reaching them
        if view is None or not view.active:
            return None
        grants = tuple(Grant(target, namespace, Role(role)) for target, namespace, role in view.grants)
        return Subject(name, view.admin, grants)

    async def _subject(self, user: UserRow) -> Subject:
        reaching = await self._grants.reaching(user.id)
        grants = tuple(Grant(target, namespace, Role(role)) for target, namespace, role in reaching)
        return Subject(user.name, user.admin, grants)

    async def actor_for(self, user: UserRow, source: str | None, credential: Credential) -> Actor:
        """An actor with the user's whole permission (the admin API and web UI: not limited to token scopes),
        proved by ``credential`` (the password, or an app token)."""
        subject = await self._subject(user)

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

    # Users ----------------------------------------------------------------------------------------------

    async def bootstrap_admin(self, password: str | None) -> str | None:
        """Create ``admin`` on first start; returns the generated password (None when given or existing)."""
        if await self._users.get(ADMIN) is not None:
            return None
        generated = None if password else passwords.generate_password()
        try:
            stored_hash = await self._password_checks.hash(password or generated or "")
            await self._users.create(ADMIN, stored_hash, admin=True)
        except AlreadyExists:
            return None  # another node starting at the same moment created it first
        await self._audit.record(Actor.system(), "user.create", ADMIN, admin=True, bootstrap=True)
        return generated

    async def reset_password(
        self, actor: Actor, name: str, password: str | None = None, current: str | None = None
    ) -> str:
        """Set a user's password (generated when not given); returns it. Users change their own with their
        current password; administrators set anybody else's without it (the operator's CLI, anybody's)."""
        actor.require_password("changing a password")
        if actor.is_anonymous or actor.name != name:
            actor.require_admin()
        elif actor.credential is not Credential.SYSTEM:
            user = await self._users.get(name)
            if current is None or user is None or not await self._password_checks.verify(user.password_hash, current):
                raise Denied("the current password is wrong or missing: changing your password needs it")
        new = password or passwords.generate_password()
        _check_password(new)
        await self._users.update(name, password_hash=await self._password_checks.hash(new))
        await self._audit.record(actor, "user.password", name)
        return new

    async def users(self, actor: Actor) -> list[UserRow]:
        actor.require_admin()
        return await self._users.all()

    async def user(self, actor: Actor, name: str) -> UserRow:
        if actor.is_anonymous or actor.name != name:
            actor.require_admin()
        found = await self._users.get(name)
        if found is None:
            raise NotFound(f"no user {name}")
        return found

    async def create_user(self, actor: Actor, name: str, password: str | None, admin: bool = False) -> UserRow:
        actor.require_admin()
        check_name("user", name)
        if password is not None:
            _check_password(password)
        stored_hash = await self._password_checks.hash(password) if password else None
        created = await self._users.create(name, stored_hash, admin)
        await self._audit.record(actor, "user.create", name, admin=admin)
        return created

    async def update_user(
        self, actor: Actor, name: str, admin: bool | None = None, active: bool | None = None
    ) -> UserRow:
        actor.require_admin()
        values = {k: v for k, v in {"admin": admin, "active": active}.items() if v is not None}
        if name == actor.name and values and not all(values.values()):
            raise InvalidRequest("administrators cannot demote or deactivate themselves")
        updated = await self._users.update(name, **values) if values else await self.user(actor, name)
        await self._audit.record(actor, "user.update", name, **values)
        return updated

    async def delete_user(self, actor: Actor, name: str, with_repositories: bool = False) -> None:
        """Delete a user; refused while their namespace holds repositories unless ``with_repositories``."""
        actor.require_admin()
        if name == actor.name:
            raise InvalidRequest("administrators cannot delete themselves")
        await self.user(actor, name)
        removed = await self._empty_namespace(actor, "user", name, with_repositories)
        await self._users.delete(name, actor.name)
        await self._audit.record(actor, "user.delete", name, repositories=removed)

    # Organizations and teams ----------------------------------------------------------------------------

    async def organizations(self, actor: Actor) -> list[str]:
        actor.require_admin()
        return await self._organizations.all()

    async def create_organization(self, actor: Actor, name: str) -> None:
        """Create an organization and its ``owners`` team, which holds admin on the organization's namespace."""
        actor.require_admin()
        check_name("organization", name)
        await self._organizations.create(name, OWNERS, Role.ADMIN)
        await self._audit.record(actor, "organization.create", name)

    async def delete_organization(self, actor: Actor, name: str, with_repositories: bool = False) -> None:
        """Delete an organization; refused while it holds repositories unless ``with_repositories``."""
        actor.require_admin()
        if name not in await self.organizations(actor):
            raise NotFound(f"no organization {name}")
        removed = await self._empty_namespace(actor, "organization", name, with_repositories)
        await self._organizations.delete(name, actor.name)
        await self._audit.record(actor, "organization.delete", name, repositories=removed)

    async def _empty_namespace(self, actor: Actor, kind: str, name: str, with_repositories: bool) -> int:
        """Refuse to orphan repositories: with ``with_repositories`` delete them (returns how many), else
        raise naming them."""
        held = await self._repositories.names_under(name)
        if held and not with_repositories:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise InvalidRequest(
                f"the {kind} {name} still owns {len(held)} {'repository' if len(held) == 1 else 'repositories'} "
                f"({shown}): delete them first, or delete "
                f"the {kind} together with its repositories (with_repositories=true, --with-repositories)"
            )
        for repository in held:  # every one first: refused before anything is deleted
            await self._policies.check_repository_delete(repository)
        for repository in held:
            await remove_repository(self._repositories, self._storage, RepositoryName.parse(repository))
            await self._audit.record(actor, "repository.delete", repository)
        return len(held)

    # Reserved names -------------------------------------------------------------------------------------

    async def reserved_names(self, actor: Actor) -> list[ReservedName]:
        """Names of deleted users and organizations, which nobody may register until released."""
        actor.require_admin()
        return await self._namespaces.reserved()

    async def release_name(self, actor: Actor, name: str) -> None:
        """Let a reserved name be registered again (by whoever the administrator means it for)."""
        actor.require_admin()
        await self._namespaces.release(name)
        await self._audit.record(actor, "namespace.release", name)

    async def teams(self, actor: Actor, organization: str) -> list[TeamRow]:
        actor.require_admin()
        return await self._teams.of(organization)

    async def create_team(self, actor: Actor, organization: str, name: str) -> None:
        actor.require_admin()
        check_name("team", name)
        await self._teams.create(organization, name)
        await self._audit.record(actor, "team.create", f"{organization}/{name}")

    async def delete_team(self, actor: Actor, organization: str, name: str) -> None:
        actor.require_admin()
        await self._teams.delete(organization, name)
        await self._audit.record(actor, "team.delete", f"{organization}/{name}")

    async def members(self, actor: Actor, organization: str, team: str) -> list[str]:
        actor.require_admin()
        return await self._teams.members(organization, team)

    async def add_member(self, actor: Actor, organization: str, team: str, user: str) -> None:
        actor.require_admin()
        if await self._teams.add_member(organization, team, user):
            await self._audit.record(actor, "team.member.add", f"{organization}/{team}", user=user)

    async def remove_member(self, actor: Actor, organization: str, team: str, user: str) -> None:
        actor.require_admin()
        if not await self._teams.remove_member(organization, team, user):
            raise NotFound(f"{user} is not a member of {organization}/{team}")
        await self._audit.record(actor, "team.member.remove", f"{organization}/{team}", user=user)

    # Grants ---------------------------------------------------------------------------------------------

    async def grants(self, actor: Actor, target: str | None = None) -> list[GrantRow]:
        if target is None:
            actor.require_admin()
            return await self._grants.all()
        parsed = Target.parse(target)
        self._require_target_admin(actor, parsed)
        return await self._grants.all(parsed.name)

    async def put_grant(
        self, actor: Actor, target: str, role: str, user: str | None = None, team: str | None = None
    ) -> GrantRow:
        """Give ``role`` (read, read-write, admin) on a repository or ``namespace/*`` to a user or a team."""
        parsed = Target.parse(target)
        self._require_target_admin(actor, parsed)
        try:
            level = Role.parse(role)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if (user is None) == (team is None):
            raise InvalidRequest("a grant goes to exactly one of: a user, a team (organization/team)")
        team_key = None
        if team is not None:
            organization, sep, team_name = team.partition("/")
            if not sep:
                raise InvalidRequest(f"team {team!r}: write organization/team")
            team_key = (organization, team_name)
        row = await self._grants.put(user, team_key, parsed.name, parsed.namespace, level)
        await self._audit.record(actor, "grant.put", str(parsed), role=level.label, user=user, team=team, grant=row.id)
        return row

    async def delete_grant(self, actor: Actor, grant_id: int) -> None:
        row = await self._grants.get(grant_id)
        if row is None:
            raise NotFound(f"no grant {grant_id}")
        self._require_target_admin(actor, Target(row.target, row.namespace))
        await self._grants.delete(grant_id)
        await self._audit.record(
            actor, "grant.delete", str(Target(row.target, row.namespace)), user=row.user, team=row.team, grant=row.id
        )

    def _require_target_admin(self, actor: Actor, target: Target) -> None:
        if actor.admin or actor.can(target.probe, Action.ADMIN):
            return
        actor.require_admin()  # raises with the right error for anonymous and authenticated callers

    # App tokens -----------------------------------------------------------------------------------------

    async def tokens(self, actor: Actor, user: str) -> list[AppTokenRow]:
        self._require_self_or_admin(actor, user)
        return await self._app_tokens.of(user)

    async def create_token(self, actor: Actor, user: str, name: str, read_only: bool = False) -> CreatedToken:
        """A new app token (``read_only``: it may only pull, whatever the user may do); needs the password."""
        self._require_self_or_admin(actor, user)
        actor.require_password("creating an app token")
        if not name.strip() or len(name) > 100:
            raise InvalidRequest("a token needs a name of 1 to 100 characters")
        token = passwords.new_app_token()
        row = await self._app_tokens.create(user, token.id, name.strip(), token.secret_hash, read_only)
        await self._audit.record(actor, "token.create", user, token=token.id, name=row.name, read_only=read_only)
        return CreatedToken(row, token.secret)

    async def revoke_token(self, actor: Actor, user: str, token_id: str) -> None:
        self._require_self_or_admin(actor, user)
        actor.require_password("revoking an app token")
        await self._app_tokens.delete(user, token_id)
        await self._audit.record(actor, "token.revoke", user, token=token_id)

    def _require_self_or_admin(self, actor: Actor, user: str) -> None:
        if actor.is_anonymous or actor.name != user:
            if not actor.admin and not actor.is_anonymous:
                raise Denied(f"{actor.name} may not manage the tokens of {user}")
            actor.require_admin()


def _check_password(password: str) -> None:
    if len(password) < passwords.MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"a password needs at least {passwords.MIN_PASSWORD_LENGTH} characters")
