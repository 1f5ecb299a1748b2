"""A client side of Docker token auth for httpx (sync and async), as docker and containerd do it.

Before a request it asks the token endpoint (with Basic credentials) for the scope the request needs,
worked out from its path the way clients do; on a 401 challenge it asks again for the challenged scope and
retries once. Tokens are cached per scope set.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Generator

import httpx

_REPOSITORY = re.compile(r"^/v2/(.+?)/(?:blobs|manifests|tags|referrers)/")
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def scopes_for(request: httpx.Request) -> list[str]:
    path = request.url.path
    if path == "/v2/_catalog":
        return ["registry:catalog:*"]
    found = _REPOSITORY.match(path)
    if not found:
        return []
    scopes = [f"repository:{found.group(1)}:pull,push,delete"]
    source = request.url.params.get("from")
    if source:
        scopes.append(f"repository:{source}:pull")
    return scopes


def challenge(response: httpx.Response) -> dict[str, str]:
    header = response.headers.get("www-authenticate", "")
    if not header.lower().startswith("bearer "):
        return {}
    return dict(_CHALLENGE.findall(header))


class DockerTokenAuth(httpx.Auth):
    requires_response_body = True

    def __init__(self, username: str | None, secret: str | None, realm: str, service: str = "trustyard") -> None:
        self.realm = realm
        self.service = service
        self.basic = (
            "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode() if username is not None else None
        )
        self.tokens: dict[tuple[str, ...], str] = {}

    def _token_request(self, scopes: list[str]) -> httpx.Request:
        headers = {"Authorization": self.basic} if self.basic else {}
        params = [("service", self.service), *(("scope", s) for s in scopes)]
        return httpx.Request("GET", self.realm, params=params, headers=headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if request.url.path.startswith("/auth/"):
            yield request
            return
        scopes = scopes_for(request)
        key = tuple(scopes)
        if key not in self.tokens:
            response = yield self._token_request(scopes)
            if response.status_code == 200:
                self.tokens[key] = response.json()["token"]
        if key in self.tokens:
            request.headers["Authorization"] = f"Bearer {self.tokens[key]}"
        response = yield request
        wanted = challenge(response)
        if response.status_code != 401 or not wanted:
            return
        more = [*scopes, wanted["scope"]] if "scope" in wanted else scopes
        token_response = yield self._token_request(more)
        if token_response.status_code != 200:
            return
        self.tokens[key] = token_response.json()["token"]
        request.headers["Authorization"] = f"Bearer {self.tokens[key]}"
        yield request
