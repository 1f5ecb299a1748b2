"""Account commands in-process: users, teams, grants, tokens, visibility, audit, admin password reset."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from trustyard.cli.main import main


def run(data: Path, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    return result.output


def test_accounts_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    password = run(data, "user", "create", "alice").strip()
    assert len(password) >= 20
    run(data, "org", "create", "acme")
    run(data, "team", "create", "acme/devs")
    run(data, "team", "add", "acme/devs", "alice")
    assert json.loads(run(data, "team", "members", "acme/devs")) == ["alice"]
    grant_id = run(data, "grant", "add", "acme/*", "read-write", "--team", "acme/devs").strip()
    grants = json.loads(run(data, "grant", "list"))
    assert {"id": int(grant_id), "target": "acme/*", "role": "read-write", "user": None, "team": "acme/devs"} in grants
    secret = run(data, "token", "create", "alice", "laptop").strip()
    assert secret.startswith("tyt_")
    tokens = json.loads(run(data, "token", "list", "alice"))
    assert [t["name"] for t in tokens] == ["laptop"]
    run(data, "token", "revoke", "alice", tokens[0]["id"])
    run(data, "repo", "visibility", "acme/app", "public")
    run(data, "grant", "remove", grant_id)
    events = [json.loads(line) for line in run(data, "audit", "--limit", "100").splitlines()]
    actions = {e["action"] for e in events}
    assert {
        "user.create",
        "team.create",
        "grant.put",
        "grant.delete",
        "token.create",
        "repository.visibility",
    } <= actions
    assert all(e["actor"] == "system" for e in events)
    assert secret not in json.dumps(events)


def test_admin_reset_password_and_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "user", "create", "admin", "--admin")
    new = run(data, "admin", "reset-password").strip()
    assert len(new) >= 20
    result = CliRunner().invoke(main, ["team", "add", "nope/devs", "admin", "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "no team nope/devs" in result.output


def test_deleted_names_stay_reserved_until_released(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "user", "create", "bob")
    run(data, "user", "delete", "bob")
    reserved = json.loads(run(data, "namespace", "reserved"))
    assert [(r["name"], r["kind"], r["reserved_by"]) for r in reserved] == [("bob", "user", "system")]
    refused = CliRunner().invoke(main, ["org", "create", "bob", "--data-dir", str(data)])
    assert refused.exit_code == 1
    assert "trustyard namespace release bob" in refused.output
    assert "Released bob" in run(data, "namespace", "release", "bob")
    run(data, "user", "create", "bob")
    assert json.loads(run(data, "namespace", "reserved")) == []
    assert run(data, "token", "create", "bob", "pull-only", "--read-only").startswith("tyt_")
