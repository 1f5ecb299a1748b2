"""``trustyard keys rotate``: after it and a restart, tokens signed with the old key are refused and new logins
work; the command says that nodes must restart, and that an operator's own ``token_key`` file is theirs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from trustyard.app import create_app
from trustyard.auth.tokens import new_signing_key_pem
from trustyard.cli.main import main
from trustyard.config import Settings

PASSWORD = "keys-rotate-password-1234"


async def _serve(settings: Settings, bearer: str | None) -> tuple[int | None, str]:
    """Start the application as a worker does (and stop it): how a request with ``bearer`` is answered, and a
    token from a new password login."""
    app = create_app(settings, migrate_first=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as http:
            old = None
            if bearer is not None:
                old = (await http.get("/v2/", headers={"Authorization": f"Bearer {bearer}"})).status_code
            got = await http.get("/auth/token", params={"service": "trustyard"}, auth=("admin", PASSWORD))
            assert got.status_code == 200, got.text
            token: str = got.json()["token"]
            assert (await http.get("/v2/", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    return old, token


def test_after_a_rotation_and_a_restart_old_tokens_are_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_password=PASSWORD, insecure_http=True)
    _, before = asyncio.run(_serve(settings, None))
    status, _ = asyncio.run(_serve(settings, before))
    assert status == 200, "a restart alone keeps the keys: tokens stay valid"

    result = CliRunner().invoke(main, ["keys", "rotate", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "rotated the token signing key and the web session key" in result.output
    assert "restart every node" in result.output

    status, after = asyncio.run(_serve(settings, before))
    assert status == 401, "a token signed with the retired key"
    status, _ = asyncio.run(_serve(settings, after))
    assert status == 200


def test_an_operators_own_token_key_file_is_named_and_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    own = data / "keys" / "token.pem"  # the operator put theirs where older versions kept the key
    own.parent.mkdir(parents=True)
    own.write_bytes(new_signing_key_pem())
    config = tmp_path / "config.yml"
    config.write_text(json.dumps({"data_dir": str(data), "token_key": str(own)}))
    result = CliRunner().invoke(main, ["keys", "rotate", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    said = json.loads(result.output.strip().splitlines()[-1])
    assert said["rotated"] == ["token_key", "session_key"]
    assert said["token_key_file"] == str(own)
    assert own.exists(), "the operator's own key file is not a legacy copy to remove"


def test_without_a_data_directory_it_says_where_to_run_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["keys", "rotate", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no trustyard data in" in result.output
