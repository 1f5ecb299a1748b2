"""Webhook endpoints as operators write them: CNCF Distribution's ``notifications:`` block, as it is.

The same ``EndpointSettings`` comes from the config file, the admin API (JSON with the same keys), the CLI and
the web form, so every edge parses into one value type here. Distribution's keys are accepted unchanged
(``name``, ``disabled``, ``url``, ``headers``, ``timeout``, ``threshold``, ``backoff``, ``ignoredmediatypes``,
``ignore: {mediatypes, actions}``; durations as Go writes them: ``500ms``, ``1s``, ``1m30s``); trustyard adds
``secret``, the key of the ``X-Trustyard-Signature`` HMAC. ``events: {includereferences}`` is accepted and has
no effect (trustyard sends no references).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from trustyard.errors import InvalidRequest

ACTIONS = ("push", "pull", "delete", "mount")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """Seconds from a Go duration (``1s``, ``250ms``, ``1m30s``) or a plain number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _GO_DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not a duration (e.g. 500ms, 1s, 1m30s)") from None
            seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    else:
        raise ValueError(f"{value!r} is not a duration (e.g. 500ms, 1s, 1m30s)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


class Ignore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mediatypes: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)

    @field_validator("actions")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ACTIONS))
        if unknown:
            raise ValueError(f"unknown action(s) {', '.join(unknown)}; actions are {', '.join(ACTIONS)}")
        return value


class EndpointSettings(BaseModel):
    """One endpoint of Distribution's ``notifications.endpoints``, plus ``secret``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    url: str
    disabled: bool = False
    #: Sent with every request; Distribution writes each value as a list (``Authorization: [Bearer x]``).
    headers: dict[str, list[str]] = Field(default_factory=dict)
    #: Per request; Distribution's durations.
    timeout: float = 5.0
    #: Failures in a row before retries back off exponentially (until then they come every ``backoff``).
    threshold: int = Field(default=3, ge=1, le=1000)
    backoff: float = 1.0
    ignoredmediatypes: list[str] = Field(default_factory=list)
    ignore: Ignore = Field(default_factory=Ignore)
    #: trustyard's addition: the HMAC-SHA256 key of ``X-Trustyard-Signature``. None: no signature header.
    secret: SecretStr | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("a name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("headers", mode="before")
    @classmethod
    def _header_lists(cls, value: Any) -> Any:
        # Distribution writes lists; a single string is what people type, so take that too.
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("timeout", "backoff", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds > 3600:
            raise ValueError("at most 1h")
        return seconds

    def ignores(self, action: str, media_type: str | None) -> bool:
        if action in self.ignore.actions:
            return True
        return media_type is not None and (media_type in self.ignoredmediatypes or media_type in self.ignore.mediatypes)


class EventsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    includereferences: bool = False


class NotificationsSettings(BaseModel):
    """Distribution's ``notifications:`` block."""

    model_config = ConfigDict(extra="forbid")

    events: EventsSettings = Field(default_factory=EventsSettings)
    endpoints: list[EndpointSettings] = Field(default_factory=list)

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, value: list[EndpointSettings]) -> list[EndpointSettings]:
        names = [e.name for e in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"endpoint names must be unique: {', '.join(duplicates)}")
        return value


def parse_endpoint(document: object, name: str | None = None) -> EndpointSettings:
    """An endpoint from JSON or YAML data (every edge's input), ``name`` taken from the URL when given;
    InvalidRequest naming each bad field otherwise."""
    if not isinstance(document, dict):
        raise InvalidRequest("a webhook endpoint is an object: {url, headers, timeout, threshold, backoff, ...}")
    if name is not None:
        if document.get("name", name) != name:
            raise InvalidRequest(f"the body names endpoint {document['name']!r} but the URL names {name!r}")
        document = {**document, "name": name}
    try:
        return EndpointSettings.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'endpoint'}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(f"invalid webhook endpoint: {problems}") from None
