"""The pure permission policy: roles, grants on repositories and namespaces, ownership, public pulls."""

from __future__ import annotations

import pytest

from trustyard.auth.policy import Grant, Role, Subject, allowed_actions, grant, role_on

ALICE = Subject("alice", grants=(Grant("acme/app", False, Role.READ), Grant("tools", True, Role.WRITE)))


def test_roles_give_growing_actions() -> None:
    assert allowed_actions(ALICE, "acme/app", public=False) == {"pull"}
    assert allowed_actions(ALICE, "tools/cli", public=False) == {"pull", "push"}
    assert allowed_actions(ALICE, "tools/deep/nested", public=False) == {"pull", "push"}
    admin = Subject("root", admin=True)
    assert allowed_actions(admin, "anything/at/all", public=False) == {"pull", "push", "delete", "*"}


def test_a_namespace_grant_does_not_cover_a_longer_name_or_the_bare_name() -> None:
    assert role_on(ALICE, "toolsmith/app") is None
    assert role_on(ALICE, "tools") is None
    assert role_on(ALICE, "acme/app2") is None


def test_users_own_their_namespace() -> None:
    assert role_on(ALICE, "alice/app") == Role.ADMIN
    assert role_on(ALICE, "alicebob/app") is None


def test_highest_role_wins() -> None:
    subject = Subject("bob", grants=(Grant("t", True, Role.READ), Grant("t/app", False, Role.ADMIN)))
    assert role_on(subject, "t/app") == Role.ADMIN
    assert role_on(subject, "t/other") == Role.READ


def test_public_repositories_pull_for_anyone() -> None:
    assert allowed_actions(None, "acme/app", public=True) == {"pull"}
    assert allowed_actions(None, "acme/app", public=False) == frozenset()
    assert allowed_actions(ALICE, "tools/x", public=True) == {"pull", "push"}


def test_grant_is_the_intersection_never_an_error() -> None:
    assert grant(ALICE, "acme/app", {"pull", "push", "delete"}, public=False) == {"pull"}
    assert grant(None, "acme/app", {"push"}, public=True) == frozenset()


@pytest.mark.parametrize(("text", "role"), [("read", Role.READ), ("read-write", Role.WRITE), ("admin", Role.ADMIN)])
def test_role_labels(text: str, role: Role) -> None:
    assert Role.parse(text) is role
    assert role.label == text
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("owner")
