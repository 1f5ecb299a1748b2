"""``/healthz``, ``/readyz``, ``/debug/health`` and ``/metrics``: no login, but only for the client networks
the operator allows (``metrics.allow``; everyone when empty).

- ``/healthz``: the process answers (liveness). Never touches the database or storage.
- ``/readyz``: the database and storage answer; 503 naming the failing part otherwise (readiness: a load
  balancer takes the node out).
- ``/debug/health``: the same checks in CNCF Distribution's format, ``{}`` when healthy, else
  ``{"<check>": "<error>"}`` with 503, for monitors written against Distribution.
- ``/metrics``: Prometheus text format, summed over this node's worker processes.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from trustyard import metrics
from trustyard.services import Services

Network = IPv4Network | IPv6Network


def _allowed(request: Request) -> bool:
    networks: tuple[Network, ...] = request.app.state.monitoring_allow
    if not networks:
        return True
    if request.client is None:
        return False
    try:
        address = ip_address(request.client.host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _forbidden(request: Request) -> Response:
    host = request.client.host if request.client else "unknown"
    return PlainTextResponse(
        f"{request.url.path} is not open to {host}: add its network to metrics.allow in the configuration\n",
        status_code=403,
    )


async def healthz(request: Request) -> Response:
    if not _allowed(request):
        return _forbidden(request)
    return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    if not _allowed(request):
        return _forbidden(request)
    services: Services = request.app.state.services
    checks = await services.health.checks()
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "seconds": round(c.seconds, 6)} for c in checks},
    }
    return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


async def debug_health(request: Request) -> Response:
    if not _allowed(request):
        return _forbidden(request)
    services: Services = request.app.state.services
    failing = {c.name: c.detail for c in await services.health.checks() if not c.ok}
    return JSONResponse(failing, status_code=503 if failing else 200, headers={"Cache-Control": "no-store"})


async def prometheus(request: Request) -> Response:
    if not _allowed(request):
        return _forbidden(request)
    metrics.mark_dead_workers()
    body, content_type = metrics.exposition()
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


routes = [
    Route("/healthz", healthz, methods=["GET", "HEAD"]),
    Route("/readyz", readyz, methods=["GET", "HEAD"]),
    Route("/debug/health", debug_health, methods=["GET", "HEAD"]),
    Route("/metrics", prometheus, methods=["GET"]),
]
