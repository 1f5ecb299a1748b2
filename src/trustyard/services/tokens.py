"""Logging in and registry tokens: credentials → principal → token with requested ∩ allowed scopes.

``login`` checks a password (argon2, off the event loop: ``services/password_checks.py``) or an app token;
password guessing is slowed per (account, address) by ``services/lockout.py``, app tokens never are.
``login_basic`` is the one check of HTTP Basic credentials (the admin API, the token endpoint, /v2/). ``issue``
and ``refresh`` sign tokens; refresh tokens only when the registry allows them (``refresh_tokens`` setting, off
by default); ``authenticate`` turns a Bearer token into an ``Actor`` from the token alone, with no database
query; ``authenticate_basic`` turns HTTP Basic credentials on /v2/ into the actor a token for the same account
would make, verifying them through ``login`` once per cache lifetime (``auth/credential_cache.py``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from trustyard import metrics
from trustyard.auth import passwords
from trustyard.auth.credential_cache import CredentialCache
from trustyard.auth.policy import PULL, Subject, allowed_actions, grant, role_on
from trustyard.auth.scopes import CATALOG, CATALOG_SCOPE, REGISTRY, REPOSITORY, Scope
from trustyard.auth.tokens import TokenAuthority, TokenInvalid
from trustyard.db.app_tokens import AppTokenRow, AppTokenStore
from trustyard.db.repositories import RepositoryStore
from trustyard.db.users import UserRow, UserStore
from trustyard.errors import InvalidToken, LoginFailed, TooManyRequests, Unauthorized
from trustyard.services.actor import Action, Actor, Credential
from trustyard.services.audit import Audit
from trustyard.services.lockout import Lockout
from trustyard.services.password_checks import PasswordChecks
from trustyard.services.permissions import Permissions

MAX_SCOPES = 64


@dataclass(frozen=True, slots=True)
class Principal:
    """Who logged in, and with which app token (None: with the password)."""

    user: UserRow
    app_token: AppTokenRow | None = None

    @property
    def credential(self) -> Credential:
        return Credential.PASSWORD if self.app_token is None else Credential.APP_TOKEN


@dataclass(frozen=True, slots=True)
class Verified:
    """What checking HTTP Basic credentials on /v2/ gave, as the credential cache keeps it."""

    subject: Subject
    read_only: bool  # a read-only app token: pull only


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
        users: UserStore,
        app_tokens: AppTokenStore,
        repositories: RepositoryStore,
        permissions: Permissions,
        audit: Audit,
        lockout: Lockout,
        verified: CredentialCache[Verified],
        password_checks: PasswordChecks,
        *,
        refresh_tokens: bool,
    ) -> None:
        self.authority = authority
        self.refresh_tokens = refresh_tokens
        self._users = users
        self._app_tokens = app_tokens
        self._repositories = repositories
        self._permissions = permissions
        self._audit = audit
        self._lockout = lockout
        self._verified = verified
        self._password_checks = password_checks

    @property
    def service(self) -> str:
        return self.authority.service

    # Logging in -----------------------------------------------------------------------------------------

    async def login(self, username: str, secret: str, source: str | None, *, app_tokens: bool = True) -> Principal:
        """The principal for a user name and a password or (when ``app_tokens``) an app token; LoginFailed
        (audited) otherwise, TooManyRequests while this address must wait before guessing this password or
        while too many password checks wait on this worker (``services/password_checks.py``)."""
        username = username[:64]
        token_id = passwords.app_token_id(secret)
        if token_id is not None and not app_tokens:
            raise LoginFailed("use your password here: app tokens work for docker login and the registry API only")
        if token_id is None:
            try:
                await self._lockout.check(username, source)
            except TooManyRequests:
                metrics.AUTH_FAILURES.labels("throttled").inc()
                raise
        user = await self._users.get(username)
        row = None
        if token_id is not None:
            row = await self._app_tokens.get(token_id)
            ok = row is not None and user is not None and row.user == user.name
            ok = ok and row is not None and passwords.token_matches(row.secret_hash, secret)
        else:
            try:
                ok = await self._password_checks.verify(user.password_hash if user else None, secret)
            except TooManyRequests:  # too many password checks queued on this worker: retry, not a failure
                metrics.AUTH_FAILURES.labels("busy").inc()
                raise
        if not ok or user is None or not user.active:
            metrics.AUTH_FAILURES.labels("login").inc()
            await self._audit.record(Actor.claimant(username, source), "login.failed", username)
            raise LoginFailed()
        if row is not None:
            await self._app_tokens.touch(row.id, row.last_used_at)
        return Principal(user, row)

    async def login_basic(self, authorization: str | None, source: str | None) -> Principal | None:
        """Verify ``Authorization: Basic`` credentials: the account (password) or app token they prove, None
        without such a header, LoginFailed / TooManyRequests otherwise. Every Basic-authenticated edge uses
        this; ``Principal.credential`` says whether it was the password or an app token."""
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
        """The principal's actor with their whole permission, marked with the credential they proved."""
        return await self._permissions.actor_for(principal.user, source, principal.credential)

    # Issuing --------------------------------------------------------------------------------------------

    async def issue(self, principal: Principal | None, requested: list[Scope], offline: bool) -> IssuedToken:
        """A token for requested ∩ allowed scopes (anonymous when ``principal`` is None); never an error.
        ``offline`` asks for a refresh token too, granted only when refresh tokens are on: otherwise the client
        keeps the credentials it logged in with, as it does with Distribution and Harbor."""
        user = principal.user if principal else None
        subject = await self._permissions.subject(user.name) if user else None
        wanted = requested[:MAX_SCOPES]
        names = [s.name for s in wanted if s.type == REPOSITORY]
        public = await self._repositories.public(names)
        scopes: list[Scope] = []
        for scope in wanted:
            if scope.type == REPOSITORY:
                actions = grant(subject, scope.name, scope.actions, scope.name in public)
                if principal is not None and principal.app_token is not None and principal.app_token.read_only:
                    actions &= {PULL}  # a read-only app token pulls, whatever its user may do
                if actions:
                    scopes.append(Scope(REPOSITORY, scope.name, actions))
            elif scope.type == REGISTRY and scope.name == CATALOG:
                scopes.append(CATALOG_SCOPE)  # the catalog itself lists only what the caller may pull
        token, issued = self.authority.issue_access(user.name if user else "", scopes)
        refresh = None
        if offline and self.refresh_tokens and principal is not None and user is not None:
            stamp = passwords.password_stamp(user.password_hash) if user.password_hash else None
            token_id = principal.app_token.id if principal.app_token else None
            refresh = self.authority.issue_refresh(user.name, token_id, stamp)
        kind = "anonymous" if principal is None else "app_token" if principal.app_token else "password"
        metrics.TOKENS_ISSUED.labels(kind).inc()
        return IssuedToken(token, self.authority.access_ttl, issued, scopes, refresh)

    async def refresh(self, refresh_token: str, requested: list[Scope], source: str | None) -> IssuedToken:
        """A new access token from a refresh token, if refresh tokens are on and its user, password and app
        token are still current (turning the setting off revokes every refresh token issued before)."""
        if not self.refresh_tokens:
            raise LoginFailed("refresh tokens are turned off on this registry: log in with a password or app token")
        try:
            claims = self.authority.verify_refresh(refresh_token)
        except TokenInvalid:
            raise LoginFailed("invalid refresh token") from None
        user = await self._users.get(claims.subject)
        valid = user is not None and user.active
        row = None
        if valid and user is not None and claims.app_token is not None:
            row = await self._app_tokens.get(claims.app_token)
            valid = row is not None and row.user == user.name
        elif valid and user is not None:
            current = passwords.password_stamp(user.password_hash) if user.password_hash else None
            valid = current is not None and current == claims.password_stamp
        if not valid or user is None:
            metrics.AUTH_FAILURES.labels("refresh").inc()
            await self._audit.record(Actor.claimant(claims.subject, source), "login.failed", claims.subject)
            raise LoginFailed("refresh token revoked")
        issued = await self.issue(Principal(user, row), requested, offline=False)
        # The same refresh token stays valid: docker keeps the one it got at login.
        return IssuedToken(issued.token, issued.expires_in, issued.issued_at, issued.scopes, refresh_token)

    # Verifying (hot path: no database) ------------------------------------------------------------------

    def authenticate(self, authorization: str | None, source: str | None) -> Actor:
        """The actor of a request: anonymous without credentials, else what its Bearer token grants."""
        if not authorization:
            return Actor.anonymous(source, registry=True)
        kind, _, credential = authorization.partition(" ")
        if kind.lower() != "bearer" or not credential.strip():
            raise Unauthorized("use a Bearer token from the token endpoint (docker login does this) or HTTP Basic")
        try:
            claims = self.authority.verify_access(credential.strip())
        except TokenInvalid:
            metrics.AUTH_FAILURES.labels("token").inc()
            raise InvalidToken() from None

        def allowed(repository: str, action: Action) -> bool:
            return claims.allows(REPOSITORY, repository, action.value)

        return Actor.from_token(claims.subject, allowed, claims.allows(REGISTRY, CATALOG, "*"), source)

    async def authenticate_basic(self, authorization: str, source: str | None, repositories: Sequence[str]) -> Actor:
        """The actor of HTTP Basic credentials on /v2/: what a token for the same account would carry on
        ``repositories`` (the names the request touches) and the catalog; a read-only app token only pulls.
        Verified credentials are cached (bounded, ``ttl`` seconds), so only the first request of a while pays
        for argon2; a failure is a failed login as at the token endpoint (audited, slowed per address)."""
        key = self._verified.key(authorization)
        verified = self._verified.get(key)
        if verified is None:
            principal = await self.login_basic(authorization, source)
            subject = await self._permissions.subject(principal.user.name) if principal else None
            if principal is None or subject is None:
                raise LoginFailed()
            verified = Verified(subject, principal.app_token is not None and principal.app_token.read_only)
            self._verified.put(key, verified)
        # Public repositories add pull, as the token endpoint grants it; only names the subject holds no
        # role on can gain anything, so a caller working in its own repositories costs no query.
        subject, read_only = verified.subject, verified.read_only
        ungranted = [name for name in repositories if role_on(subject, name) is None]
        public = await self._repositories.public(ungranted) if ungranted else set()

        def allowed(repository: str, action: Action) -> bool:
            if read_only and action is not Action.PULL:
                return False
            return action.value in allowed_actions(subject, repository, repository in public)

        # Refused like a token that lacks the scope (401 with the Bearer challenge naming it), and the catalog
        # lists what the account may pull, public repositories included, as for a token.
        return Actor.from_token(subject.name, allowed, True, source)
