"""The docs, run as written: every ```sh block of README.md and docs/*.md runs, in document order, against a
real `trustyard serve` started for its file, so docs and code cannot drift.

How a block runs: `bash -euo pipefail` in a fresh working directory holding what the docs assume a reader
has (a checkout's `scripts/` and `.venv/`, `img.tar` as a docker-archive, `file.txt`) and the server's data as
`./trustyard-data`; `HOST:5000` (and `HOST`) become the server's loopback address; `$PASSWORD` holds admin's
password; `trustyard` is on the PATH; every client keeps its state inside that directory (never the machine's
HOME). The blocks of one file share the server and the directory, so a later block sees what an earlier made.

A block that needs what a test machine lacks (a real cloud account, sudo into /etc/docker, a Docker engine)
carries a marker on the line before it, which this test reports as a skip with its reason:

    <!-- docs-test: skip (needs sudo to write /etc/docker) -->

Every other block runs, including blocks added later; a failing block fails its file's test, naming the file
and line of the block, with the commands as run and their output.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .e2e import REPO_ROOT, Clients, random_image, start_registry, tail, write_oci_layout

DOC_FILES = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip\s*\((?P<reason>.+)\)\s*-->\s*$")
#: README.md opens with exactly these two commands; they are this harness's server and the test command itself.
README_OPENING = "README.md's opening commands: ./scripts/serve is the server this test starts, ./scripts/test runs it"
BLOCK_TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    text: str
    skip: str | None  # the marker's reason

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


def shell_blocks(path: Path) -> list[Block]:
    """The ```sh blocks of a markdown file, with the skip marker each carries (if any)."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), len(lines))
        if fence["lang"] in ("sh", "bash", "shell"):
            body = [line.removeprefix(fence["indent"]) for line in lines[index + 1 : end]]
            before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            marker = SKIP.match(before)
            if marker is None and "docs-test" in before:
                raise AssertionError(f"{path.name}:{index}: write the marker as <!-- docs-test: skip (reason) -->")
            blocks.append(Block(path, index + 1, "\n".join(body) + "\n", marker["reason"] if marker else None))
        index = end + 1
    if path.name == "README.md" and blocks:
        blocks[0] = Block(path, blocks[0].line, blocks[0].text, README_OPENING)
    return blocks


BLOCKS = {path: shell_blocks(path) for path in DOC_FILES}


def as_run(block: Block, host: str) -> str:
    """The block with the docs' placeholder address replaced by the server's."""
    return re.sub(r"\bHOST\b", "127.0.0.1", block.text.replace("HOST:5000", host))


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A reader's working directory (a checkout's scripts/, img.tar, file.txt) and the environment that keeps
    every client inside it."""
    workdir = tmp_path / "reader"
    (workdir / "home").mkdir(parents=True)
    for name in ("scripts", ".venv", "deploy"):  # a checkout after ./scripts/serve (deploy/: docs/deploy.md)
        (workdir / name).symlink_to(REPO_ROOT / name)
    (workdir / "file.txt").write_text("an artifact\n")
    clients = Clients(tmp_path / "clients")
    try:
        layout = write_oci_layout(tmp_path / "layout", {"app": random_image(14)})
        clients.copy(f"oci:{layout}:app", f"docker-archive:{workdir / 'img.tar'}")
        env = {
            **clients.env,
            "HOME": str(workdir / "home"),
            "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        for name in ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "TRUSTYARD_DATA_DIR", "TRUSTYARD_ADMIN_PASSWORD"):
            env.pop(name, None)
        yield workdir, env
    finally:
        clients.close()


@pytest.mark.parametrize("path", [p for p, blocks in BLOCKS.items() if any(b.skip is None for b in blocks)], ids=str)
def test_shell_blocks_run_as_written(path: Path, reader: tuple[Path, dict[str, str]]) -> None:
    workdir, env = reader
    registry = start_registry("trustyard", workdir / "trustyard-data")
    try:
        assert registry.password is not None
        env = {**env, "PASSWORD": registry.password}
        for block in BLOCKS[path]:
            if block.skip is not None:
                continue
            script = as_run(block, registry.host)
            code, stdout, stderr = run_block(script, workdir, env)
            if code != 0:
                pytest.fail(
                    f"{block.where}: the block {'timed out' if code is None else f'failed with exit code {code}'}"
                    f"\n--- as run ---\n{script}--- stdout ---\n{tail(stdout)}\n--- stderr ---\n{tail(stderr)}"
                )
    finally:
        registry.stop()


def run_block(script: str, workdir: Path, env: dict[str, str]) -> tuple[int | None, str, str]:
    """Run a block in a session of its own: whatever it leaves running (`cmd &`, a server that should have
    been marked skip) is killed with it. The exit code is None when it ran past BLOCK_TIMEOUT."""
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    code: int | None
    try:
        stdout, stderr = proc.communicate(timeout=BLOCK_TIMEOUT)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if code is None:
        stdout, stderr = proc.communicate()
    return code, stdout, stderr


SKIPPED = [block for blocks in BLOCKS.values() for block in blocks if block.skip is not None]


@pytest.mark.parametrize("block", SKIPPED, ids=[block.where for block in SKIPPED])
def test_blocks_marked_skip_are_reported(block: Block) -> None:
    pytest.skip(f"{block.where}: {block.skip}")


def test_the_harness_finds_blocks_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```sh\necho one\n```\n\n<!-- docs-test: skip (needs a cloud) -->\n```sh\naws s3 ls\n```\n"
        "1. a list\n   ```sh\n   echo indented\n   ```\n```text\nnot run\n```\n"
    )
    blocks = shell_blocks(page)
    assert [(b.line, b.text, b.skip) for b in blocks] == [
        (3, "echo one\n", None),
        (8, "aws s3 ls\n", "needs a cloud"),
        (12, "echo indented\n", None),
    ]
    assert as_run(blocks[0], "127.0.0.1:1234") == "echo one\n"
    assert as_run(Block(page, 1, "curl https://HOST:5000/ca HOST\n", None), "127.0.0.1:9") == (
        "curl https://127.0.0.1:9/ca 127.0.0.1\n"
    )


def test_a_block_fails_on_its_first_failing_command(tmp_path: Path) -> None:
    code, stdout, _ = run_block("echo one\nfalse\necho never\n", tmp_path, dict(os.environ))
    assert (code, stdout) == (1, "one\n")
    code, _, _ = run_block("false | cat\n", tmp_path, dict(os.environ))
    assert code == 1  # pipefail: a failing command inside a pipe fails the block
