"""The admin route table; the OpenAPI document is built from the same table, so the two cannot drift."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trustyard.admin import accounts, audit, gc, grants, info, openapi, policies, repositories, settings, webhooks
from trustyard.admin.openapi import Endpoint

PREFIX = "/api/v1"

ENDPOINTS = [
    Endpoint("GET", "/me", accounts.me, "The calling user", response="User"),
    Endpoint(
        "GET",
        "/info",
        info.get_info,
        "Version, URLs, TLS, storage (secrets masked), database, counts, nodes, last collection (admin)",
        response="Info",
    ),
    Endpoint("GET", "/users", accounts.list_users, "List users (admin)", response="Users"),
    Endpoint("POST", "/users", accounts.create_user, "Create a user (admin)", body="NewUser", response="CreatedUser"),
    Endpoint("GET", "/users/{user}", accounts.get_user, "Show a user", response="User"),
    Endpoint("PATCH", "/users/{user}", accounts.update_user, "Set admin or active (admin)", body="UserFlags"),
    Endpoint(
        "DELETE",
        "/users/{user}",
        accounts.delete_user,
        "Delete a user (admin); ?with_repositories=true also deletes their repositories; the name stays reserved",
    ),
    Endpoint(
        "PUT",
        "/users/{user}/password",
        accounts.set_password,
        "Set or generate a password (your own: with current_password; needs the password, not an app token)",
        body="Password",
    ),
    Endpoint("GET", "/users/{user}/tokens", accounts.list_tokens, "List a user's app tokens", response="Tokens"),
    Endpoint(
        "POST",
        "/users/{user}/tokens",
        accounts.create_token,
        "Create an app token (its secret is shown once; needs the password, not an app token)",
        body="NamedToken",
        response="NewToken",
    ),
    Endpoint("DELETE", "/users/{user}/tokens/{token}", accounts.revoke_token, "Revoke an app token"),
    Endpoint("GET", "/organizations", accounts.list_organizations, "List organizations (admin)"),
    Endpoint("POST", "/organizations", accounts.create_organization, "Create an organization (admin)", body="Named"),
    Endpoint(
        "DELETE",
        "/organizations/{org}",
        accounts.delete_organization,
        "Delete an organization (admin); ?with_repositories=true also deletes its repositories; name stays reserved",
    ),
    Endpoint(
        "GET",
        "/reserved-names",
        accounts.list_reserved,
        "Names of deleted users and organizations (admin)",
        response="ReservedNames",
    ),
    Endpoint("DELETE", "/reserved-names/{name}", accounts.release_name, "Release a reserved name (admin)"),
    Endpoint("GET", "/organizations/{org}/teams", accounts.list_teams, "List teams (admin)"),
    Endpoint("POST", "/organizations/{org}/teams", accounts.create_team, "Create a team (admin)", body="Named"),
    Endpoint("DELETE", "/organizations/{org}/teams/{team}", accounts.delete_team, "Delete a team (admin)"),
    Endpoint("GET", "/organizations/{org}/teams/{team}/members", accounts.list_members, "List members (admin)"),
    Endpoint("PUT", "/organizations/{org}/teams/{team}/members/{user}", accounts.add_member, "Add a member (admin)"),
    Endpoint(
        "DELETE", "/organizations/{org}/teams/{team}/members/{user}", accounts.remove_member, "Remove a member (admin)"
    ),
    Endpoint("GET", "/grants", grants.list_grants, "List grants (?target=)", response="Grants"),
    Endpoint("POST", "/grants", grants.put_grant, "Grant a role to a user or team", body="NewGrant", response="Grant"),
    Endpoint("DELETE", "/grants/{grant:int}", grants.delete_grant, "Remove a grant"),
    Endpoint("GET", "/repositories", repositories.list_repositories, "Repositories the caller may pull"),
    Endpoint("GET", "/repositories/{name:path}", repositories.get_repository, "Show a repository's visibility"),
    Endpoint(
        "PATCH",
        "/repositories/{name:path}",
        repositories.update_repository,
        "Make a repository public or private (repository admin)",
        body="Visibility",
    ),
    Endpoint("DELETE", "/repositories/{name:path}", repositories.delete_repository, "Delete a repository (admin)"),
    Endpoint("GET", "/audit", audit.list_events, "The audit log, newest first (admin)", response="AuditEvents"),
    Endpoint(
        "GET", "/settings/storage", settings.get_storage, "The storage backend; secrets only as set/not set (admin)"
    ),
    Endpoint(
        "PUT",
        "/settings/storage",
        settings.put_storage,
        "Probe and save the storage backend; returns when every worker serves it, and the backend's images are "
        "indexed in the background (admin)",
        body="StorageSettings",
    ),
    Endpoint(
        "GET",
        "/settings/storage/adoption",
        settings.get_adoption,
        "How far indexing what the storage backend holds got: state, counts (admin)",
        response="Adoption",
    ),
    Endpoint(
        "POST",
        "/settings/storage/adoption",
        settings.post_adoption,
        "Index the storage backend again, in the background (admin)",
        response="Adoption",
    ),
    Endpoint(
        "POST",
        "/gc",
        gc.start_run,
        "Start a garbage collection in the background (admin)",
        body="GcOptions",
        response="GcRun",
    ),
    Endpoint(
        "GET", "/gc", gc.get_status, "Whether a collection is running, and the last run (admin)", response="GcStatus"
    ),
    Endpoint("GET", "/gc/runs", gc.list_runs, "Past collections, newest first (?limit=, admin)", response="GcRuns"),
    Endpoint("GET", "/gc/runs/{run:int}", gc.get_run, "One collection run (admin)", response="GcRun"),
    Endpoint(
        "GET", "/policies", policies.list_policies, "Tag policies per repository pattern (admin)", response="Policies"
    ),
    Endpoint(
        "PUT",
        "/policies/{pattern:path}",
        policies.put_policy,
        "Set the tag policy of a repository pattern: immutable tags, retention rules (admin)",
        body="Policy",
        response="Policy",
    ),
    Endpoint("DELETE", "/policies/{pattern:path}", policies.delete_policy, "Remove a tag policy (admin)"),
    Endpoint(
        "GET",
        "/retention/plan",
        policies.retention_plan,
        "The tags retention would remove now, before the next collection (admin)",
        response="RetentionPlan",
    ),
    Endpoint(
        "GET", "/gc/schedule", gc.get_schedule, "How often collection runs by itself (admin)", response="GcSchedule"
    ),
    Endpoint(
        "PUT",
        "/gc/schedule",
        gc.put_schedule,
        "Set the collection schedule (admin)",
        body="GcSchedule",
        response="GcSchedule",
    ),
    Endpoint(
        "POST",
        "/settings/storage/migration",
        settings.start_migration,
        "Migrate to another backend: copy every blob, manifest, tag and link while serving (admin)",
        body="StorageSettings",
        response="StorageMigration",
    ),
    Endpoint(
        "DELETE",
        "/settings/storage/migration",
        settings.cancel_migration,
        "Cancel the migration under way: back to its source, with what was pushed meanwhile copied back (admin)",
        response="StorageMigration",
    ),
    Endpoint(
        "GET",
        "/settings/storage/migration",
        settings.get_migration,
        "Progress of the latest storage migration: objects, bytes, rate, ETA, state, report (admin)",
        response="StorageMigration",
    ),
    Endpoint(
        "POST",
        "/settings/storage/test",
        settings.test_storage,
        "Probe storage settings without saving them (admin)",
        body="StorageSettings",
    ),
    Endpoint("GET", "/webhooks", webhooks.list_endpoints, "Webhook endpoints (admin)", response="WebhookEndpoints"),
    Endpoint(
        "GET", "/webhooks/{name}", webhooks.get_endpoint, "Show a webhook endpoint (admin)", response="WebhookView"
    ),
    Endpoint(
        "PUT",
        "/webhooks/{name}",
        webhooks.put_endpoint,
        "Create or replace a webhook endpoint; a secret left out keeps the saved one (admin)",
        body="WebhookEndpoint",
        response="WebhookView",
    ),
    Endpoint("DELETE", "/webhooks/{name}", webhooks.delete_endpoint, "Delete a webhook endpoint and its queue (admin)"),
    Endpoint(
        "GET",
        "/webhooks/{name}/deliveries",
        webhooks.list_deliveries,
        "The endpoint's newest deliveries (?limit=), each with every attempt (admin)",
        response="WebhookDeliveries",
    ),
]


async def openapi_document(request: Request) -> Response:
    return JSONResponse(openapi.document(ENDPOINTS, PREFIX))


routes = [
    Route(f"{PREFIX}/openapi.json", openapi_document, methods=["GET"]),
    *(Route(PREFIX + e.path, e.handler, methods=[e.method]) for e in ENDPOINTS),
]
