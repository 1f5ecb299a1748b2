"""Account commands in-process: users, teams, grants, tokens, visibility, audit, admin password reset; each
confirms in a sentence, or in JSON with --json; they find the server's data the way serve does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustyard.app import open_services
from trustyard.cli.main import main
from trustyard.config import Settings
from trustyard.services.tokens import Tokens


def run(data: Path, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data)], input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def as_json(data: Path, *args: str) -> dict[str, object]:
    loaded = json.loads(run(data, *args, "--json"))
    assert isinstance(loaded, dict)
    return loaded


def test_accounts_from_the_command_line(data: Path) -> None:
    created = as_json(data, "user", "create", "alice")
    assert created["user"] == "alice"
    assert len(str(created["password"])) >= 20
    assert run(data, "org", "create", "acme").startswith("created organization acme with team acme/owners")
    assert run(data, "team", "create", "acme/devs") == "created team acme/devs\n"
    assert run(data, "team", "add", "acme/devs", "alice") == "alice is a member of acme/devs\n"
    assert json.loads(run(data, "team", "members", "acme/devs")) == ["alice"]
    sentence = run(data, "grant", "add", "acme/*", "read-write", "--team", "acme/devs")
    assert sentence.startswith("granted read-write on acme/* to team acme/devs (grant ")
    grant = as_json(data, "grant", "add", "acme/app", "read", "--user", "alice")
    assert grant == {"id": grant["id"], "target": "acme/app", "role": "read", "user": "alice", "team": None}
    grants = json.loads(run(data, "grant", "list"))
    assert {"id": grant["id"], "target": "acme/app", "role": "read", "user": "alice", "team": None} in grants
    token = as_json(data, "token", "create", "alice", "laptop")
    secret = str(token["token"])
    assert secret.startswith("tyt_")
    tokens = json.loads(run(data, "token", "list", "alice"))
    assert [t["name"] for t in tokens] == ["laptop"]
    assert run(data, "token", "revoke", "alice", tokens[0]["id"]).startswith("revoked app token")
    assert run(data, "repo", "visibility", "acme/app", "public") == "repository acme/app is public\n"
    assert run(data, "grant", "remove", str(grant["id"])) == f"removed grant {grant['id']}\n"
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


def test_admin_reset_password_and_errors(data: Path) -> None:
    run(data, "user", "create", "admin", "--admin")
    new = as_json(data, "admin", "reset-password")
    assert len(str(new["password"])) >= 20
    result = CliRunner().invoke(main, ["team", "add", "nope/devs", "admin", "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "no team nope/devs" in result.output


def test_deleted_names_stay_reserved_until_released(data: Path) -> None:
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
    assert str(as_json(data, "token", "create", "bob", "pull-only", "--read-only")["token"]).startswith("tyt_")


def test_admin_password_chosen_on_stdin(data: Path) -> None:
    run(data, "user", "create", "admin", "--admin")
    said = run(data, "admin", "reset-password", "--password-stdin", stdin="a-chosen-long-password\n")
    assert said == "set the password of admin\n"
    assert "a-chosen-long-password" not in said

    async def login() -> None:
        async with open_services(Settings(data_dir=data)) as services:
            tokens: Tokens = services.tokens
            assert (await tokens.login("admin", "a-chosen-long-password", None)).user.name == "admin"

    asyncio.run(login())
    empty = CliRunner().invoke(main, ["admin", "reset-password", "--password-stdin", "--data-dir", str(data)], input="")
    assert empty.exit_code == 2
    assert "held no password" in empty.output


def test_commands_find_the_servers_data_as_serve_does(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # No ./trustyard-data here: refused, saying how to point at the server's data (it used to start afresh).
    missing = CliRunner().invoke(main, ["user", "list"])
    assert missing.exit_code == 1
    assert f"no trustyard data in {tmp_path / 'trustyard-data'}" in missing.output
    assert "--data-dir" in missing.output
    assert not (tmp_path / "trustyard-data").exists()

    monkeypatch.setenv("TRUSTYARD_DATA_DIR", str(data))
    assert CliRunner().invoke(main, ["user", "create", "bob"]).exit_code == 0
    monkeypatch.delenv("TRUSTYARD_DATA_DIR")

    config = tmp_path / "trustyard.yml"
    config.write_text(f"data_dir: {data}\n")
    listed = CliRunner().invoke(main, ["user", "list", "--config", str(config)])
    assert [u["name"] for u in json.loads(listed.output)] == ["bob"]
