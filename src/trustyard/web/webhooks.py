"""Settings > Webhooks: the endpoints that receive push, pull, delete and mount events, a form to add or change
one, and each endpoint's delivery log with the status of every attempt.

Header values and the secret are write-only (the form says whether a secret is set; leaving it empty keeps
it). Endpoints from the config file's ``notifications:`` block show read-only with their source.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from trustyard.errors import InvalidRequest, TrustyardError
from trustyard.services.actor import Actor
from trustyard.services.webhook_settings import ACTIONS, EndpointSettings, parse_endpoint
from trustyard.services.webhooks import EndpointView
from trustyard.web.errors import message_of, status_of
from trustyard.web.http import flash, redirect, render, services
from trustyard.web.sessions import actor, form, text

WEBHOOKS_URL = "/settings/webhooks"


async def webhooks_page(request: Request) -> Response:
    caller = await actor(request)
    return await _page(request, caller, _blank())


async def endpoint_page(request: Request) -> Response:
    """One endpoint: its settings in the form, and its newest deliveries with every attempt."""
    caller = await actor(request)
    webhooks = services(request).webhooks
    view = await webhooks.endpoint(caller, request.path_params["name"])
    deliveries = await webhooks.deliveries(caller, view.name, 50)
    return render(
        request,
        "webhook.html",
        caller,
        section="settings",
        endpoint=view,
        v=_values_of_view(view),
        actions=ACTIONS,
        log=deliveries,
    )


async def save_endpoint(request: Request) -> Response:
    data = await form(request)
    caller = await actor(request)
    values = _values_of_form(data)
    try:
        saved = await services(request).webhooks.save(caller, _settings(data))
    except TrustyardError as error:
        return await _page(request, caller, values, ("error", message_of(error)), status_of(error))
    flash(request, "ok", f"Saved the webhook endpoint {saved.name}. Every worker sends to it within seconds.")
    return redirect(request, f"{WEBHOOKS_URL}/{saved.name}")


async def delete_endpoint(request: Request) -> Response:
    await form(request)
    caller = await actor(request)
    name = request.path_params["name"]
    await services(request).webhooks.remove(caller, name)
    flash(request, "ok", f"Deleted the webhook endpoint {name} and the events still queued for it.")
    return redirect(request, WEBHOOKS_URL)


async def _page(
    request: Request, caller: Actor, values: dict[str, Any], result: Any = None, status: int = 200
) -> Response:
    endpoints = await services(request).webhooks.endpoints(caller)
    return render(
        request,
        "webhooks.html",
        caller,
        status,
        section="settings",
        endpoints=endpoints,
        v=values,
        actions=ACTIONS,
        result=result,
    )


def _settings(data: FormData) -> EndpointSettings:
    """The endpoint the form describes, parsed exactly as the config file and the admin API parse it."""
    headers: dict[str, list[str]] = {}
    for line in text(data, "headers").splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise InvalidRequest(f"header line {line.strip()!r}: write it as Name: value")
        headers.setdefault(name.strip(), []).append(value.strip())
    document: dict[str, Any] = {
        "url": text(data, "url"),
        "timeout": text(data, "timeout") or "5s",
        "threshold": text(data, "threshold") or "3",
        "backoff": text(data, "backoff") or "1s",
        "disabled": data.get("disabled") == "on",
        "ignoredmediatypes": text(data, "ignoredmediatypes").split(),
        "ignore": {"actions": [a for a in ACTIONS if data.get(f"ignore_{a}") == "on"]},
    }
    if headers:
        document["headers"] = headers
    if secret := text(data, "secret"):
        document["secret"] = secret
    return parse_endpoint(document, text(data, "name"))


def _blank() -> dict[str, Any]:
    return {"timeout": "5s", "threshold": "3", "backoff": "1s"}


def _values_of_form(data: FormData) -> dict[str, Any]:
    """What was typed, to show again after a failure: everything but the secret and header values."""
    values: dict[str, Any] = {
        key: text(data, key) for key in ("name", "url", "timeout", "threshold", "backoff", "ignoredmediatypes")
    }
    values.update({f"ignore_{a}": data.get(f"ignore_{a}") == "on" for a in ACTIONS})
    values["disabled"] = data.get("disabled") == "on"
    return values


def _values_of_view(view: EndpointView) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": view.name,
        "url": view.url,
        "timeout": f"{view.timeout:g}s",
        "threshold": str(view.threshold),
        "backoff": f"{view.backoff:g}s",
        "ignoredmediatypes": "\n".join(view.ignored_media_types),
        "disabled": not view.enabled,
    }
    values.update({f"ignore_{a}": a in view.ignored_actions for a in ACTIONS})
    return values
