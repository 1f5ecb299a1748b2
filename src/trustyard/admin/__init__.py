"""The admin edge: a JSON API under ``/api/v1/`` for users, organizations, teams, grants, repositories, app
tokens and the audit log, with its OpenAPI document at ``/api/v1/openapi.json``."""
