"""Users: site administrators create, flag, deactivate and delete them; every user sets their own password
with their current one (an app token cannot change the account that issued it); ``admin`` is created on first
start with a generated password shown once. Each change is audited."""

from __future__ import annotations

from trustyard.auth import passwords
from trustyard.db.users import UserRow, UserStore
from trustyard.errors import AlreadyExists, Denied, InvalidRequest, NotFound
from trustyard.services.actor import Actor, Credential
from trustyard.services.audit import Audit
from trustyard.services.namespaces import Namespaces, check_name
from trustyard.services.password_checks import PasswordChecks

__all__ = ["ADMIN", "UserRow", "Users"]  # UserRow: the row the edges render
ADMIN = "admin"


class Users:
    def __init__(self, store: UserStore, namespaces: Namespaces, audit: Audit, password_checks: PasswordChecks) -> None:
        self._store = store
        self._namespaces = namespaces
        self._audit = audit
        self._password_checks = password_checks

    async def bootstrap_admin(self, password: str | None) -> str | None:
        """Create ``admin`` on first start; returns the generated password (None when given or existing)."""
        if await self._store.get(ADMIN) is not None:
            return None
        generated = None if password else passwords.generate_password()
        try:
            stored_hash = await self._password_checks.hash(password or generated or "")
            await self._store.create(ADMIN, stored_hash, admin=True)
        except AlreadyExists:
            return None  # another node starting at the same moment created it first
        await self._audit.record(Actor.system(), "user.create", ADMIN, admin=True, bootstrap=True)
        return generated

    async def set_password(
        self, actor: Actor, name: str, password: str | None = None, current: str | None = None
    ) -> str:
        """Set a user's password (generated when not given); returns it. Users change their own with their
        current password; administrators set anybody else's without it (the operator's CLI, anybody's)."""
        actor.require_password("changing a password")
        if actor.is_anonymous or actor.name != name:
            actor.require_admin()
        elif actor.credential is not Credential.SYSTEM:
            user = await self._store.get(name)
            if current is None or user is None or not await self._password_checks.verify(user.password_hash, current):
                raise Denied("the current password is wrong or missing: changing your password needs it")
        new = password or passwords.generate_password()
        _check_password(new)
        await self._store.update(name, password_hash=await self._password_checks.hash(new))
        await self._audit.record(actor, "user.password", name)
        return new

    async def all(self, actor: Actor) -> list[UserRow]:
        actor.require_admin()
        return await self._store.all()

    async def get(self, actor: Actor, name: str) -> UserRow:
        if actor.is_anonymous or actor.name != name:
            actor.require_admin()
        found = await self._store.get(name)
        if found is None:
            raise NotFound(f"no user {name}")
        return found

    async def create(self, actor: Actor, name: str, password: str | None, admin: bool = False) -> UserRow:
        actor.require_admin()
        check_name("user", name)
        if password is not None:
            _check_password(password)
        stored_hash = await self._password_checks.hash(password) if password else None
        created = await self._store.create(name, stored_hash, admin)
        await self._audit.record(actor, "user.create", name, admin=admin)
        return created

    async def update(self, actor: Actor, name: str, admin: bool | None = None, active: bool | None = None) -> UserRow:
        actor.require_admin()
        values = {k: v for k, v in {"admin": admin, "active": active}.items() if v is not None}
        if name == actor.name and values and not all(values.values()):
            raise InvalidRequest("administrators cannot demote or deactivate themselves")
        updated = await self._store.update(name, **values) if values else await self.get(actor, name)
        await self._audit.record(actor, "user.update", name, **values)
        return updated

    async def delete(self, actor: Actor, name: str, with_repositories: bool = False) -> None:
        """Delete a user; refused while their namespace holds repositories unless ``with_repositories``."""
        actor.require_admin()
        if name == actor.name:
            raise InvalidRequest("administrators cannot delete themselves")
        await self.get(actor, name)
        removed = await self._namespaces.empty(actor, "user", name, with_repositories)
        await self._store.delete(name, actor.name)
        await self._audit.record(actor, "user.delete", name, repositories=removed)


def _check_password(password: str) -> None:
    if len(password) < passwords.MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"a password needs at least {passwords.MIN_PASSWORD_LENGTH} characters")
