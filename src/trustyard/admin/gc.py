"""``/api/v1/gc``: start a garbage collection (it runs in the background), its status, the history of runs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, body, field, render, services, when
from trustyard.errors import InvalidRequest
from trustyard.services.gc import DEFAULT_GRACE, GcOptions, GcRunRow, GcSchedule, parse_duration

MAX_RUNS = 100


async def start_run(request: Request) -> Response:
    """``{"dry_run": false, "untagged": false, "grace": "2h"}`` (all optional): 202 with the run, running."""
    data = await body(request)
    grace = field(data, "grace", str, required=False)
    options = GcOptions(
        dry_run=bool(field(data, "dry_run", bool, required=False)),
        untagged=bool(field(data, "untagged", bool, required=False)),
        grace=DEFAULT_GRACE if grace is None else parse_duration(grace),
    )
    run = await services(request).gc.start(await actor(request), options)
    return render(run_document(run), status=202)


async def get_status(request: Request) -> Response:
    status = await services(request).gc.status(await actor(request), 1)
    last = status.runs[0] if status.runs else None
    return render(
        {"running": status.running, "holder": status.holder, "last_run": run_document(last) if last else None}
    )


async def list_runs(request: Request) -> Response:
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RUNS:
        raise InvalidRequest(f"limit must be a number from 1 to {MAX_RUNS}")
    status = await services(request).gc.status(await actor(request), int(raw))
    return render({"runs": [run_document(r) for r in status.runs]})


async def get_run(request: Request) -> Response:
    run_id = request.path_params["run"]
    status = await services(request).gc.status(await actor(request), MAX_RUNS)
    for run in status.runs:
        if run.id == run_id:
            return render(run_document(run))
    raise InvalidRequest(f"no garbage collection run {run_id} among the last {MAX_RUNS}")


def run_document(run: GcRunRow) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "started_at": when(run.started_at),
        "finished_at": when(run.finished_at),
        "started_by": run.started_by,
        "dry_run": run.dry_run,
        "untagged": run.untagged,
        "grace_seconds": run.grace_seconds,
        "report": run.report,
        "error": run.error,
    }


async def get_schedule(request: Request) -> Response:
    return render((await services(request).gc.schedule(await actor(request))).document())


async def put_schedule(request: Request) -> Response:
    """``{"every": "24h" | "off", "untagged": false, "grace": "2h"}``; every worker follows it within a minute."""
    data = await body(request)
    schedule = GcSchedule.parse(
        field(data, "every", str),
        bool(field(data, "untagged", bool, required=False)),
        field(data, "grace", str, required=False) or "2h",
    )
    saved = await services(request).gc.set_schedule(await actor(request), schedule)
    return render(saved.document())
