"""Repository pages: the list (search, pagination), one repository with its tags and the pull command,
visibility, and deleting a tag after a confirmation page."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from trustyard.oci.names import RepositoryName, Tag
from trustyard.services.actor import Action
from trustyard.web.http import flash, redirect, registry_host, render, services
from trustyard.web.sessions import actor, form, text

PAGE = 50


def repository_url(name: str) -> str:
    return f"/repositories/{name}"


async def list_repositories(request: Request) -> Response:
    caller = await actor(request)
    query, last = request.query_params.get("q", "").strip(), request.query_params.get("last") or None
    names = await services(request).repositories.catalog(caller, PAGE + 1, last, query or None)
    next_url = None
    if len(names) > PAGE:
        names = names[:PAGE]
        next_url = "/repositories?" + urlencode({**({"q": query} if query else {}), "last": names[-1]})
    summaries = await services(request).repositories.summaries(caller, names)
    # The home page: site admins also see the registry at a glance (`trustyard info`); nobody else does.
    info = await services(request).info.info(caller) if caller.admin else None
    return render(
        request,
        "repositories.html",
        caller,
        section="repositories",
        info=info,
        repositories=summaries,
        query=query,
        paged=last is not None,
        next_url=next_url,
        first_url="/repositories" + (f"?{urlencode({'q': query})}" if query else ""),
    )


async def show_repository(request: Request) -> Response:
    caller, name = await actor(request), RepositoryName.parse(request.path_params["name"])
    last = request.query_params.get("last") or None
    tags = await services(request).tags.details(caller, name, PAGE + 1, last)
    public = await services(request).repositories.public(caller, name)
    next_url = f"{repository_url(name.value)}?{urlencode({'last': tags[PAGE - 1].name})}" if len(tags) > PAGE else None
    return render(
        request,
        "repository.html",
        caller,
        section="repositories",
        name=name.value,
        tags=tags[:PAGE],
        public=public,
        host=registry_host(request),
        can_delete=caller.can(name.value, Action.DELETE),
        can_manage=caller.can(name.value, Action.ADMIN),
        paged=last is not None,
        next_url=next_url,
    )


async def confirm_delete_tag(request: Request) -> Response:
    caller, name = await actor(request), RepositoryName.parse(request.path_params["name"])
    tag = Tag.parse(request.path_params["tag"])
    row = await services(request).manifests.get(caller, name, tag)
    return render(
        request, "delete_tag.html", caller, section="repositories", name=name.value, tag=tag.value, digest=row.digest
    )


async def delete_tag(request: Request) -> Response:
    await form(request)
    caller, name = await actor(request), RepositoryName.parse(request.path_params["name"])
    tag = Tag.parse(request.path_params["tag"])
    await services(request).manifests.delete(caller, name, tag)
    flash(request, "ok", f"Deleted the tag {tag.value} from {name.value}.")
    return redirect(request, repository_url(name.value))


async def set_visibility(request: Request) -> Response:
    data = await form(request)
    caller, name = await actor(request), RepositoryName.parse(request.path_params["name"])
    public = text(data, "public") == "true"
    await services(request).repositories.set_public(caller, name, public)
    flash(request, "ok", f"{name.value} is now {'public: anyone may pull it' if public else 'private'}.")
    return redirect(request, repository_url(name.value))
