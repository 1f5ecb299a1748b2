"""``trustyard storage show|test|set``: the operator's way to the storage backend, in-process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustyard.app import prepare
from trustyard.cli.main import main
from trustyard.config import Settings


@pytest.fixture(autouse=True)
def served(tmp_path: Path) -> None:
    """The data directory of a server that ran (commands refuse one that does not exist)."""
    asyncio.run(prepare(Settings(data_dir=tmp_path / "data")))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["storage", *args])
    return result.exit_code, result.output


def test_show_set_and_show_again(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out = invoke("show", "--data-dir", data)
    assert code == 0, out
    assert json.loads(out)["source"] == "default"

    root = tmp_path / "elsewhere"
    code, out = invoke("set", "--data-dir", data, "--driver", "filesystem", "--param", f"rootdirectory={root}")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["source"] == "runtime"
    assert shown["parameters"]["rootdirectory"] == str(root)
    assert shown["updated_by"] == "system"

    code, out = invoke("show", "--data-dir", data)
    assert json.loads(out)["parameters"]["rootdirectory"] == str(root)


def test_set_from_a_distribution_block(tmp_path: Path) -> None:
    block = tmp_path / "storage.yml"
    block.write_text(f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'r'}\n  delete:\n    enabled: true\n")
    code, out = invoke("test", "--data-dir", str(tmp_path / "data"), "--from-file", str(block))
    assert code == 0, out
    assert "passed the probe" in out


def test_a_failing_backend_is_an_error_message(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out = invoke(
        "set", "--data-dir", str(tmp_path / "data"), "--driver", "filesystem", "--param", f"rootdirectory={blocker}/r"
    )
    assert code == 1
    assert "Not a directory" in out  # the backend's own words
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "--driver"),
        (("--driver", "s3", "--param", "bucket"), "KEY=VALUE"),
        (("--driver", "s3", "--param", "secretkey=env:TRUSTYARD_NO_SUCH_VARIABLE"), "not set"),
        (("--driver", "s3"), "s3.bucket"),
    ],
)
def test_usage_errors_say_what_to_do(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    code, out = invoke("test", "--data-dir", str(tmp_path / "data"), *args)
    assert code == 2
    assert words in out


def test_status_and_adopt_wait(tmp_path: Path) -> None:
    """A backend holding images is adopted by `storage adopt --wait` (no server runs: the command runs it)."""
    from trustyard.storage.filesystem import FilesystemDriver

    from ..stored_images import write_images

    data = str(tmp_path / "data")
    code, out = invoke("status", "--data-dir", data)
    assert code == 0, out
    assert json.loads(out) == {"state": "none"}

    asyncio.run(write_images(FilesystemDriver(tmp_path / "data" / "storage"), 30, repositories=3))
    code, out = invoke("adopt", "--wait", "--data-dir", data)
    assert code == 0, out
    assert "done: " in out
    assert "30 manifests, 30 tags" in out
    code, out = invoke("status", "--wait", "--data-dir", data)
    assert code == 0, out
    assert "3 repositories" in out


def _push(data_dir: Path) -> None:
    """Two images in the server's storage, pushed through the services as a server would."""
    from trustyard.app import open_services

    from ..services.test_migration import push_image

    async def go() -> None:
        async with open_services(Settings(data_dir=data_dir)) as services:
            await push_image(services, "v1", b"layer one" * 1000)
            await push_image(services, "v2", b"layer two" * 1000, algorithm="sha512")

    asyncio.run(go())


def test_migrate_copies_with_a_progress_bar_and_reports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _push(data)
    code, out = invoke("migrate", "--data-dir", str(data))
    assert code == 1
    assert "no storage migration is under way: say where to migrate with --to" in out
    target = tmp_path / "moved"
    code, out = invoke("migrate", "--data-dir", str(data), "--to", "filesystem", "--param", f"rootdirectory={target}")
    assert code == 0, out
    assert "migration 1 done: 6 blobs copied" in out  # two configs, two layers, two manifests
    assert "0 missing from the source, 0 not matching their digest" in out
    code, out = invoke("migrate", "--data-dir", str(data), "--status")
    status = json.loads(out)
    assert (status["state"], status["failed"], status["eta_seconds"]) == ("done", 0, 0)
    assert status["objects"]["done"] == status["objects"]["total"]
    tags = target / "docker/registry/v2/repositories/team/app/_manifests/tags"
    assert sorted(p.name for p in tags.iterdir()) == ["v1", "v2"]
    code, out = invoke("show", "--data-dir", str(data))
    assert json.loads(out)["parameters"]["rootdirectory"] == str(target)


def test_migrate_from_a_storage_block_file_and_bad_inputs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    block = tmp_path / "storage.yml"
    block.write_text(f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'r'}\n")
    code, out = invoke("migrate", "--data-dir", str(data), "--to", str(block), "--param", "x=y")
    assert code == 2
    assert "--param goes with --to DRIVER" in out
    code, out = invoke("migrate", "--data-dir", str(data), "--to", str(tmp_path / "nothing.yml"))
    assert code == 2
    assert "give filesystem, s3 or swift" in out
    code, out = invoke("migrate", "--data-dir", str(data), "--to", str(block))
    assert code == 0, out
    assert "done" in out


def test_migrate_cancel_goes_back_with_what_was_pushed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustyard.app import open_services
    from trustyard.services import migration
    from trustyard.services.actor import Actor
    from trustyard.storage.config import FilesystemStorage, StorageSettings

    from ..services.test_migration import push_image

    monkeypatch.setattr(migration, "SETTLE_SECONDS", 0)
    data = tmp_path / "data"
    _push(data)
    code, out = invoke("migrate", "--data-dir", str(data), "--cancel")
    assert code == 1
    assert "no storage migration is under way" in out

    async def start_then_push() -> None:
        """A migration that a server began (its copy not run yet), and a push landing in its target."""
        async with open_services(Settings(data_dir=data)) as services:
            target = StorageSettings(filesystem=FilesystemStorage(rootdirectory=tmp_path / "moved"))
            await services.migrations.start(Actor.system(), target)
            await push_image(services, "v3", b"pushed while migrating" * 100)

    asyncio.run(start_then_push())
    code, out = invoke("migrate", "--data-dir", str(data), "--cancel", "--to", "filesystem")
    assert code == 2
    assert "--cancel takes no --to or --param" in out
    code, out = invoke("migrate", "--data-dir", str(data), "--cancel")
    assert code == 0, out
    assert "migration 1 cancelled: " in out
    code, out = invoke("migrate", "--data-dir", str(data), "--status")
    assert json.loads(out)["state"] == "cancelled"
    tags = data / "storage/docker/registry/v2/repositories/team/app/_manifests/tags"
    assert sorted(p.name for p in tags.iterdir()) == ["v1", "v2", "v3"]  # v3 came back from the target
    code, out = invoke("show", "--data-dir", str(data))
    assert json.loads(out)["source"] == "default"
