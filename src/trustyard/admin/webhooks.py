"""``/api/v1/webhooks``: webhook endpoints (Distribution's endpoint keys, plus ``secret``; header values and the
secret are write-only) and each endpoint's delivery log with every attempt."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, render, services, yaml_body
from trustyard.errors import InvalidRequest
from trustyard.services.webhook_settings import parse_endpoint


async def list_endpoints(request: Request) -> Response:
    views = await services(request).webhooks.endpoints(await actor(request))
    return render({"endpoints": [view.as_document() for view in views]})


async def get_endpoint(request: Request) -> Response:
    view = await services(request).webhooks.endpoint(await actor(request), request.path_params["name"])
    return render(view.as_document())


async def put_endpoint(request: Request) -> Response:
    caller = await actor(request)
    settings = parse_endpoint(await yaml_body(request, "a webhook endpoint"), request.path_params["name"])
    view = await services(request).webhooks.save(caller, settings)
    return render(view.as_document())


async def delete_endpoint(request: Request) -> Response:
    await services(request).webhooks.remove(await actor(request), request.path_params["name"])
    return Response(status_code=204)


async def list_deliveries(request: Request) -> Response:
    limit = request.query_params.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()):
        raise InvalidRequest("limit must be a number of deliveries (1-500)")
    caller = await actor(request)
    deliveries = await services(request).webhooks.deliveries(caller, request.path_params["name"], int(limit))
    return render({"deliveries": [delivery.as_document() for delivery in deliveries]})
