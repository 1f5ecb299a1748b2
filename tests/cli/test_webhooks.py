"""``trustyard webhook list|set|delete|log``, in-process against a data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustyard.cli.main import main


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["webhook", *args], env=env)
    return result.exit_code, result.output


pytestmark = pytest.mark.usefixtures("data")  # tests/cli/conftest.py: tmp_path / "data", as serve leaves it


def test_set_list_log_delete(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out = invoke(
        "set", "ci", "--data-dir", data, "--url", "https://hooks.example/registry",
        "--header", "Authorization=Bearer abc", "--secret-env", "HOOK_SECRET",
        "--timeout", "3s", "--backoff", "500ms", "--ignore-action", "pull",
        env={"HOOK_SECRET": "s3cret"},
    )  # fmt: skip
    assert code == 0, out
    shown = json.loads(out)
    assert shown["url"] == "https://hooks.example/registry"
    assert shown["headers"] == ["Authorization"]  # names only: the value is a credential
    assert shown["secret"] == "set"
    assert (shown["timeout"], shown["backoff"]) == ("3s", "0.5s")
    assert shown["ignore"]["actions"] == ["pull"]
    assert "abc" not in out
    assert "s3cret" not in out

    code, out = invoke("set", "ci", "--data-dir", data, "--url", "https://hooks.example/v2")
    assert json.loads(out)["secret"] == "set"  # left out: kept

    code, out = invoke("list", "--data-dir", data)
    assert [e["name"] for e in json.loads(out)["endpoints"]] == ["ci"]
    code, out = invoke("log", "ci", "--data-dir", data)
    assert (code, json.loads(out)) == (0, {"deliveries": []})
    code, out = invoke("delete", "ci", "--data-dir", data)
    assert code == 0, out
    code, out = invoke("log", "ci", "--data-dir", data)
    assert code == 1
    assert "no webhook endpoint named 'ci'" in out


def test_set_from_a_distribution_endpoint_block(tmp_path: Path) -> None:
    block = tmp_path / "endpoint.yml"
    block.write_text(
        "url: http://listener.example:8080/event\n"
        "headers:\n  X-Token: [abc]\n"
        "timeout: 1s\nthreshold: 10\nbackoff: 1s\n"
        "ignoredmediatypes: [application/octet-stream]\n"
        "ignore:\n  mediatypes: [application/vnd.oci.image.config.v1+json]\n  actions: [pull]\n"
    )
    code, out = invoke("set", "listener", "--data-dir", str(tmp_path / "data"), "--from-file", str(block))
    assert code == 0, out
    shown = json.loads(out)
    assert shown["threshold"] == 10
    assert shown["ignoredmediatypes"] == ["application/octet-stream", "application/vnd.oci.image.config.v1+json"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--url", "ftp://x"), "not an http:// or https:// URL"),
        (("--url", "http://x", "--timeout", "soon"), "not a duration"),
        (("--url", "http://x", "--ignore-action", "tag"), "unknown action(s) tag"),
        (("--url", "http://x", "--header", "novalue"), "NAME=VALUE"),
        (("--url", "http://x", "--secret-env", "NOT_SET_ANYWHERE"), "NOT_SET_ANYWHERE"),
    ],
)
def test_bad_input_says_what_is_wrong(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    code, out = invoke("set", "ci", "--data-dir", str(tmp_path / "data"), *args)
    assert code == 2
    assert words in out
    assert "Traceback" not in out
