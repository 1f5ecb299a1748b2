"""The web UI's route table: every page handler wrapped so its domain errors become pages (web/errors.py),
and the stylesheet and script under ``/static``."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from trustyard.web import account, accounts, audit, gc, repositories, sessions, settings, trust, webhooks
from trustyard.web.errors import Handler, page
from trustyard.web.http import STATIC

R = "/repositories/{name:path}"
ORG = "/admin/organizations/{org}"
TEAM = ORG + "/teams/{team}"
GET, POST = ["GET"], ["POST"]

PAGES: list[tuple[str, Handler, list[str]]] = [
    ("/", sessions.home, GET),
    ("/login", sessions.login_page, GET),
    ("/login", sessions.login, POST),
    ("/logout", sessions.logout, POST),
    ("/trust", trust.trust_page, GET),
    ("/account", account.account_page, GET),
    ("/account/{user}", account.account_page, GET),
    ("/account/{user}/password", account.change_password, POST),
    ("/account/{user}/tokens", account.create_token, POST),
    ("/account/{user}/tokens/{token}/revoke", account.revoke_token, POST),
    ("/repositories", repositories.list_repositories, GET),
    (R + "/-/tags/{tag}/delete", repositories.confirm_delete_tag, GET),
    (R + "/-/tags/{tag}/delete", repositories.delete_tag, POST),
    (R + "/-/visibility", repositories.set_visibility, POST),
    (R, repositories.show_repository, GET),
    ("/admin/users", accounts.list_users, GET),
    ("/admin/users", accounts.create_user, POST),
    ("/admin/users/{user}/password", accounts.reset_password, POST),
    ("/admin/users/{user}/update", accounts.update_user, POST),
    ("/admin/users/{user}/delete", accounts.delete_user, POST),
    ("/admin/organizations", accounts.list_organizations, GET),
    ("/admin/organizations", accounts.create_organization, POST),
    (ORG, accounts.show_organization, GET),
    (ORG + "/delete", accounts.delete_organization, POST),
    (ORG + "/teams", accounts.create_team, POST),
    (TEAM, accounts.show_team, GET),
    (TEAM + "/delete", accounts.delete_team, POST),
    (TEAM + "/members", accounts.add_member, POST),
    (TEAM + "/members/{user}/remove", accounts.remove_member, POST),
    ("/admin/grants", accounts.list_grants, GET),
    ("/admin/grants", accounts.create_grant, POST),
    ("/admin/grants/{grant:int}/delete", accounts.delete_grant, POST),
    ("/admin/audit", audit.list_events, GET),
    ("/admin/gc", gc.gc_page, GET),
    ("/admin/gc/run", gc.start_run, POST),
    ("/admin/gc/schedule", gc.save_schedule, POST),
    ("/admin/gc/policies", gc.save_policy, POST),
    ("/admin/gc/policies/delete", gc.delete_policy, POST),
    ("/settings/storage", settings.storage_page, GET),
    ("/settings/storage", settings.save_storage, POST),
    ("/settings/storage/upload", settings.upload_storage, POST),
    ("/settings/storage/migration", settings.migration_panel, GET),
    ("/settings/storage/migration/cancel", settings.cancel_migration, POST),
    ("/settings/webhooks", webhooks.webhooks_page, GET),
    ("/settings/webhooks", webhooks.save_endpoint, POST),
    ("/settings/webhooks/{name}", webhooks.endpoint_page, GET),
    ("/settings/webhooks/{name}/delete", webhooks.delete_endpoint, POST),
]

routes: list[BaseRoute] = [
    *(Route(path, page(handler), methods=methods) for path, handler, methods in PAGES),
    Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
]
