"""The operator's commands: --help, storage reindex (adopting a root), errors as messages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from trustyard.app import open_services, prepare
from trustyard.cli.main import main
from trustyard.config import Settings
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName, Tag
from trustyard.services.actor import Actor


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output
    assert "storage" in result.output
    serve = CliRunner().invoke(main, ["serve", "--help"])
    assert "--data-dir" in serve.output
    assert "--listen" in serve.output
    assert "--config" in serve.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("trustyard, version ")


async def _push_image(settings: Settings) -> Digest:
    await prepare(settings)
    async with open_services(settings) as services:
        repo, actor = RepositoryName("team/app"), Actor.system()
        layer = b"layer bytes"
        config = b'{"architecture":"amd64","os":"linux"}'
        for blob in (layer, config):
            await services.uploads.monolithic(actor, repo, Digest.of(blob), _once(blob))
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": str(Digest.of(config)),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": str(Digest.of(layer)),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        pushed = await services.manifests.put(actor, repo, Tag("v1"), None, manifest)
        return pushed.digest


async def _once(data: bytes):  # type: ignore[no-untyped-def]
    yield data


def test_reindex_rebuilds_a_lost_index(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    digest = asyncio.run(_push_image(settings))
    (tmp_path / "trustyard.db").unlink()

    result = CliRunner().invoke(main, ["storage", "reindex", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["repositories"] == 1
    assert report["manifests"] == 1
    assert report["tags"] == 1

    async def check() -> None:
        async with open_services(settings) as services:
            row = await services.manifests.get(Actor.system(), RepositoryName("team/app"), Tag("v1"))
            assert row.digest == str(digest)
            assert await services.tags.list(Actor.system(), RepositoryName("team/app"), None, None) == ["v1"]

    asyncio.run(check())
    again = CliRunner().invoke(main, ["storage", "reindex", "--data-dir", str(tmp_path)])
    assert again.exit_code == 0  # idempotent


def test_reindex_adopts_a_root_into_a_new_data_directory(tmp_path: Path) -> None:
    asyncio.run(_push_image(Settings(data_dir=tmp_path / "old")))
    config = tmp_path / "adopt.yml"
    config.write_text(f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'old' / 'storage'}\n")
    new = tmp_path / "new"  # does not exist yet: reindex, unlike the other commands, may start it
    result = CliRunner().invoke(main, ["storage", "reindex", "--config", str(config), "--data-dir", str(new)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tags"] == 1


def test_bad_config_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("nonsense: 1\n")
    result = CliRunner().invoke(main, ["storage", "reindex", "--config", str(config)])
    assert result.exit_code != 0
    assert "nonsense" in result.output
    assert "Traceback" not in result.output
