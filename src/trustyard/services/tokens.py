"""Logging in and registry tokens: credentials → principal → token with requested ∩ allowed scopes.

``login`` checks a password (argon2) or an app token, slowed by rate limiting on recent failures (counted in
the audit log, so the limit holds across workers and nodes). ``issue`` and ``refresh`` sign tokens;
``authenticate`` turns a Bearer token into an ``Actor`` from the token alone, with no database query.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta

from trustyard import metrics
from trustyard.auth import passwords
from trustyard.auth.policy import grant
from trustyard.auth.scopes import CATALOG, CATALOG_SCOPE, REGISTRY, REPOSITORY, Scope
from trustyard.auth.tokens import TokenAuthority, TokenInvalid
from trustyard.db.accounts import AccountStore, UserRow
from trustyard.db.repositories import RepositoryStore
from trustyard.errors import LoginFailed, TooManyRequests, Unauthorized
from trustyard.services.accounts import Accounts
from trustyard.services.actor import Action, Actor
from trustyard.services.audit import Audit

#: Failed logins tolerated within the window, per user name and per client address.
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 10
MAX_FAILURES_PER_SOURCE = 50
MAX_SCOPES = 64


@dataclass(frozen=True, slots=True)
class Principal:
    """Who logged in, and with which app token (None: with the password)."""

    user: UserRow
    app_token: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: int
    scopes: list[Scope]
    refresh_token: str | None


class Tokens:
    def __init__(
        self,
        authority: TokenAuthority,
        store: AccountStore,
        repositories: RepositoryStore,
        accounts: Accounts,
        audit: Audit,
    ) -> None:
        self.authority = authority
        self._store = store
        self._repositories = repositories
        self._accounts = accounts
        self._audit = audit

    @property
    def service(self) -> str:
        return self.authority.service

    # Logging in -----------------------------------------------------------------------------------------

    async def login(self, username: str, secret: str, source: str | None) -> Principal:
        """The principal for a user name and a password or app token; LoginFailed (audited) otherwise."""
        username = username[:64]
        by_user, by_source = await self._audit.failures(username, source, FAILURE_WINDOW)
        if by_user >= MAX_FAILURES_PER_USER or by_source >= MAX_FAILURES_PER_SOURCE:
            metrics.AUTH_FAILURES.labels("throttled").inc()
            raise TooManyRequests("too many failed logins; try again later")
        user = await self._store.user(username)
        token_id = passwords.app_token_id(secret)
        if token_id is not None:
            row = await self._store.token(token_id)
            ok = row is not None and user is not None and row.user == user.name
            ok = ok and row is not None and passwords.token_matches(row.secret_hash, secret)
        else:
            ok = passwords.verify_password(user.password_hash if user else None, secret)
        if not ok or user is None or not user.active:
            metrics.AUTH_FAILURES.labels("login").inc()
            await self._audit.record(Actor(name=username, source=source), "login.failed", username)
            raise LoginFailed()
        if token_id is not None:
            await self._store.touch_token(token_id)
        return Principal(user, token_id)

    async def login_basic(self, authorization: str | None, source: str | None) -> Principal | None:
        """The principal of an ``Authorization: Basic`` header; None when there is none."""
        if not authorization or authorization[:6].lower() != "basic ":
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise LoginFailed("malformed Basic credentials") from None
        username, sep, secret = decoded.partition(":")
        if not sep or not username:
            raise LoginFailed("malformed Basic credentials")
        return await self.login(username, secret, source)

    async def actor_for(self, principal: Principal, source: str | None) -> Actor:
        return await self._accounts.actor_for(principal.user, source)

    # Browser sessions (the web UI) ----------------------------------------------------------------------

    def session_stamp(self, principal: Principal) -> str:
        """What a browser session keeps besides the user name, so that changing the password (or revoking the
        app token) that opened it ends the session, as it does for refresh tokens."""
        if principal.app_token is not None:
            return f"token:{principal.app_token}"
        hashed = principal.user.password_hash
        return f"password:{passwords.password_stamp(hashed) if hashed else ''}"

    async def resume(self, username: str, stamp: str, source: str | None) -> Actor | None:
        """The actor of a browser session, re-resolved on every request (None when the user was deleted or
        deactivated, their password changed, or the app token was revoked)."""
        user = await self._store.user(username)
        if user is None or not user.active:
            return None
        kind, _, value = stamp.partition(":")
        if kind == "token":
            row = await self._store.token(value)
            valid = row is not None and row.user == user.name
        else:
            valid = user.password_hash is not None and value == passwords.password_stamp(user.password_hash)
        return await self._accounts.actor_for(user, source) if valid else None

    # Issuing --------------------------------------------------------------------------------------------

    async def issue(self, principal: Principal | None, requested: list[Scope], offline: bool) -> IssuedToken:
        """A token for requested ∩ allowed scopes (anonymous when ``principal`` is None); never an error."""
        user = principal.user if principal else None
        subject = await self._accounts.subject(user.name) if user else None
        wanted = requested[:MAX_SCOPES]
        names = [s.name for s in wanted if s.type == REPOSITORY]
        public = await self._repositories.public(names)
        scopes: list[Scope] = []
        for scope in wanted:
            if scope.type == REPOSITORY:
                actions = grant(subject, scope.name, scope.actions, scope.name in public)
                if actions:
                    scopes.append(Scope(REPOSITORY, scope.name, actions))
            elif scope.type == REGISTRY and scope.name == CATALOG:
                scopes.append(CATALOG_SCOPE)  # the catalog itself lists only what the caller may pull
        token, issued = self.authority.issue_access(user.name if user else "", scopes)
        refresh = None
        if offline and principal is not None and user is not None:
            stamp = passwords.password_stamp(user.password_hash) if user.password_hash else None
            refresh = self.authority.issue_refresh(user.name, principal.app_token, stamp)
        kind = "anonymous" if principal is None else "app_token" if principal.app_token else "password"
        metrics.TOKENS_ISSUED.labels(kind).inc()
        return IssuedToken(token, self.authority.access_ttl, issued, scopes, refresh)

    async def refresh(self, refresh_token: str, requested: list[Scope], source: str | None) -> IssuedToken:
        """A new access token from a refresh token, if its user, password and app token are still current."""
        try:
            claims = self.authority.verify_refresh(refresh_token)
        except TokenInvalid:
            raise LoginFailed("invalid refresh token") from None
        user = await self._store.user(claims.subject)
        valid = user is not None and user.active
        if valid and user is not None and claims.app_token is not None:
            row = await self._store.token(claims.app_token)
            valid = row is not None and row.user == user.name
        elif valid and user is not None:
            current = passwords.password_stamp(user.password_hash) if user.password_hash else None
            valid = current is not None and current == claims.password_stamp
        if not valid or user is None:
            metrics.AUTH_FAILURES.labels("refresh").inc()
            await self._audit.record(Actor(name=claims.subject, source=source), "login.failed", claims.subject)
            raise LoginFailed("refresh token revoked")
        issued = await self.issue(Principal(user, claims.app_token), requested, offline=False)
        # The same refresh token stays valid: docker keeps the one it got at login.
        return IssuedToken(issued.token, issued.expires_in, issued.issued_at, issued.scopes, refresh_token)

    # Verifying (hot path: no database) ------------------------------------------------------------------

    def authenticate(self, authorization: str | None, source: str | None) -> Actor:
        """The actor of a request: anonymous without credentials, else what its Bearer token grants."""
        if not authorization:
            return Actor(name="anonymous", anonymous=True, allowed=_nothing, source=source, token=True, catalog=False)
        kind, _, credential = authorization.partition(" ")
        if kind.lower() != "bearer" or not credential.strip():
            raise Unauthorized("use a Bearer token from the token endpoint (docker login does this)")
        try:
            claims = self.authority.verify_access(credential.strip())
        except TokenInvalid:
            metrics.AUTH_FAILURES.labels("token").inc()
            raise Unauthorized("invalid or expired token") from None

        def allowed(repository: str, action: Action) -> bool:
            return claims.allows(REPOSITORY, repository, action.value)

        return Actor(
            name=claims.subject or "anonymous",
            anonymous=not claims.subject,
            allowed=allowed,
            source=source,
            token=True,
            catalog=claims.allows(REGISTRY, CATALOG, "*"),
        )


def _nothing(_repository: str, _action: Action) -> bool:
    return False
