"""Docker token scopes as clients send them."""

from __future__ import annotations

from trustyard.auth.scopes import Scope, parse_scope, parse_scopes


def test_parse_and_print() -> None:
    scope = parse_scope("repository:team/app:push,pull")
    assert scope == Scope("repository", "team/app", frozenset({"pull", "push"}))
    assert str(scope) == "repository:team/app:pull,push"
    assert parse_scope("registry:catalog:*") == Scope("registry", "catalog", frozenset({"*"}))


def test_names_with_colons_and_unknown_actions() -> None:
    assert parse_scope("repository:host:5000/app:pull") == Scope("repository", "host:5000/app", frozenset({"pull"}))
    assert parse_scope("repository:app:fly") is None
    assert parse_scope("garbage") is None
    assert parse_scope("repository::pull") is None


def test_several_values_merge_and_the_oauth_form_splits_on_spaces() -> None:
    scopes = parse_scopes(["repository:a:pull repository:b:push", "repository:a:push", "nonsense"])
    assert sorted(map(str, scopes)) == ["repository:a:pull,push", "repository:b:push"]
