"""Garbage collection: run now (or a dry run), the schedule, the last runs with what they freed, and the tag
policies (immutable tags, retention rules) with the tags retention would remove next."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.errors import InvalidRequest, TrustyardError
from trustyard.services.actor import Actor
from trustyard.services.gc import DEFAULT_GRACE, GcOptions, GcSchedule, parse_duration
from trustyard.services.policies import TagPolicy
from trustyard.web.errors import message_of, status_of
from trustyard.web.http import flash, redirect, render, services
from trustyard.web.sessions import actor, form, text

GC_URL = "/admin/gc"


async def _page(request: Request, caller: Actor, result: tuple[str, str] | None = None, status: int = 200) -> Response:
    collector = services(request).gc
    state = await collector.status(caller, 20)
    schedule = await collector.schedule(caller)
    policies = await services(request).policies.policies(caller)
    expired = await collector.retention_plan(caller)
    return render(
        request,
        "gc.html",
        caller,
        status,
        section="gc",
        state=state,
        schedule=schedule.document(),
        policies=policies,
        expired=expired,
        result=result,
    )


async def gc_page(request: Request) -> Response:
    return await _page(request, await actor(request))


async def start_run(request: Request) -> Response:
    """Run now (in the background of this worker), or a dry run that only reports."""
    data = await form(request)
    caller = await actor(request)
    try:
        grace = text(data, "grace")
        options = GcOptions(
            dry_run=text(data, "op") == "dry-run",
            untagged=data.get("untagged") == "on",
            grace=parse_duration(grace) if grace else DEFAULT_GRACE,
        )
        run = await services(request).gc.start(caller, options)
    except TrustyardError as error:
        return await _page(request, caller, ("error", message_of(error)), status_of(error))
    kind = "A dry run" if options.dry_run else "Garbage collection"
    flash(request, "ok", f"{kind} started (run {run.id}). Reload this page to see what it found.")
    return redirect(request, GC_URL)


async def save_schedule(request: Request) -> Response:
    data = await form(request)
    caller = await actor(request)
    try:
        schedule = GcSchedule.parse(text(data, "every"), data.get("untagged") == "on", text(data, "grace") or "2h")
        saved = await services(request).gc.set_schedule(caller, schedule)
    except TrustyardError as error:
        return await _page(request, caller, ("error", message_of(error)), status_of(error))
    every = saved.document()["every"]
    flash(request, "ok", "Saved: collection runs by itself " + ("never." if every == "off" else f"every {every}."))
    return redirect(request, GC_URL)


def _number(data_value: str, name: str) -> int | None:
    if not data_value:
        return None
    if not data_value.isdigit():
        raise InvalidRequest(f"{name} must be a whole number of 0 or more")
    return int(data_value)


async def save_policy(request: Request) -> Response:
    data = await form(request)
    caller = await actor(request)
    try:
        policy = TagPolicy.parse(
            text(data, "pattern"),
            data.get("immutable") == "on",
            _number(text(data, "keep_last"), "Keep the newest"),
            _number(text(data, "keep_days"), "Keep days"),
            text(data, "keep_tags") or None,
        )
        await services(request).policies.put(caller, policy)
    except TrustyardError as error:
        return await _page(request, caller, ("error", message_of(error)), status_of(error))
    flash(request, "ok", f"Saved the tag policy of {policy.pattern}.")
    return redirect(request, GC_URL)


async def delete_policy(request: Request) -> Response:
    data = await form(request)
    caller = await actor(request)
    pattern = text(data, "pattern")
    try:
        await services(request).policies.delete(caller, pattern)
    except TrustyardError as error:
        return await _page(request, caller, ("error", message_of(error)), status_of(error))
    flash(request, "ok", f"Deleted the tag policy of {pattern}.")
    return redirect(request, GC_URL)
