"""Three `trustyard serve` nodes behind HAProxy behave as one registry (docs/deploy.md, "Several nodes").

The cluster: three nodes on their own data directories (two workers each, TLS with one certificate given by
config), one fresh PostgreSQL database, one Swift container, and HAProxy (`balance roundrobin`, a new server
connection per request, health checks on `/readyz`) in front, terminating TLS with the same certificate. One
node gets the secret key as `TRUSTYARD_SECRET_KEY`, the others through `secret_key_file`; none copies keys
from another.

Shown: skopeo, podman and docker push and pull through the balancer with digests verified; an upload whose
POST, PATCHes and PUT land on different nodes (their access logs say so) completes; a token one node issued is
accepted by another; a web session cookie from one node works on another; a node started without the secret
key refuses to start, saying which key it needs; and, with 16 clients pushing and pulling, `kill -9` of one
node's whole process group: clients carry on through their retries, HAProxy takes the node out of rotation,
and every push that was acknowledged pulls back with its digest.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet

from trustyard.auth.certificates import TlsFiles, ensure_certificates

from . import (
    ADMIN,
    Clients,
    Docker,
    Registry,
    Server,
    busybox_image,
    create_app_token,
    free_port,
    random_image,
    sha256_digest,
    trustyard_bin,
    wait_until,
    write_oci_layout,
)
from .stores import Store
from .test_gc_soak import Pushed, pull_and_verify, push_image

pytestmark = [
    pytest.mark.clients,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.trustyard_only(reason="runs trustyard's own nodes behind HAProxy"),
]

NODES = 3
CLIENTS = 16
#: How long the 16 clients go on pushing and pulling after one node was killed.
AFTER_KILL_SECONDS = 10.0
T = TypeVar("T")


@dataclass
class Node:
    name: str
    port: int
    data_dir: Path
    server: Server

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.server.log.read_text(errors="replace")


@dataclass
class Cluster:
    front: Registry  # HAProxy, as clients see the registry
    nodes: list[Node]
    haproxy: Server
    stats_port: int
    tls: TlsFiles
    config: list[Path]
    env: dict[str, str]

    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.tls.ca_cert)

    def backend_status(self) -> dict[str, str]:
        return backend_status(self.stats_port)


def backend_status(stats_port: int) -> dict[str, str]:
    """HAProxy's view of each node: UP, DOWN, ... (its stats page as CSV)."""
    csv = httpx.get(f"http://127.0.0.1:{stats_port}/;csv", timeout=5).text
    rows = [line.split(",") for line in csv.splitlines() if line.startswith("nodes,")]
    return {row[1]: row[17] for row in rows if row[1] != "BACKEND"}


# --------------------------------------------------------------------------------------------------------
# The cluster


def _postgres(statement: str) -> None:
    base = os.environ["TRUSTYARD_TEST_POSTGRES_URL"].rpartition("/")[0]

    async def go() -> None:
        connection = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "/postgres")
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for this module's cluster, dropped afterwards."""
    url = os.environ.get("TRUSTYARD_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("TRUSTYARD_TEST_POSTGRES_URL is not set (scripts/test sets it when PostgreSQL answers)")
    name = f"trustyard_nodes_{uuid.uuid4().hex[:12]}"
    _postgres(f'CREATE DATABASE "{name}"')
    try:
        yield f"{url.rpartition('/')[0]}/{name}"
    finally:
        _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _haproxy_config(port: int, stats: int, bundle: Path, ca: Path, nodes: list[tuple[str, int]]) -> str:
    servers = "\n".join(f"    server {name} 127.0.0.1:{node_port}" for name, node_port in nodes)
    return f"""global
    maxconn 1024

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    # A new server connection per request, so that successive requests of one client go to different nodes.
    option http-server-close
    http-reuse never
    option forwardfor
    retries 2
    option redispatch

frontend registry
    bind 127.0.0.1:{port} ssl crt {bundle}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server ssl verify required ca-file {ca} check inter 500ms fall 2 rise 2
{servers}

listen stats
    bind 127.0.0.1:{stats}
    stats enable
    stats uri /
"""


def _node_config(
    directory: Path, name: str, database: str, store: Store, tls: TlsFiles, public: str, key_file: Path | None
) -> Path:
    config = {
        "database_url": database,
        "workers": 2,
        "storage": store.storage(),
        "tls_cert": str(tls.cert),
        "tls_key": str(tls.key),
        "public_url": public,
        "trusted_proxies": ["127.0.0.1"],
        "access_log": True,
    }
    if key_file is not None:
        config["secret_key_file"] = str(key_file)
    path = directory / f"{name}.yml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def _start_node(directory: Path, name: str, config: Path, port: int, env: dict[str, str]) -> Node:
    data = directory / name
    cmd: list[str | os.PathLike[str]] = [
        trustyard_bin(),
        "serve",
        "--config",
        config,
        "--data-dir",
        data,
        "--listen",
        f"127.0.0.1:{port}",
    ]
    return Node(name, port, data, Server(cmd, directory / f"{name}.log", env=env))


def _ready(node: Node, ca: Path) -> Callable[[], bool]:
    context = ssl.create_default_context(cafile=ca)

    def check() -> bool:
        try:
            return httpx.get(f"{node.url}/readyz", verify=context, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return check


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, database: str, clients: Clients) -> Iterator[Cluster]:
    if shutil.which("haproxy") is None:
        raise AssertionError("haproxy is not installed: apt-get install haproxy (scripts/test does)")
    directory = tmp_path_factory.mktemp("nodes")
    store = Store.create("swift")
    tls = ensure_certificates(directory / "tls", ["localhost", "127.0.0.1"])
    key = Fernet.generate_key().decode()
    key_file = directory / "secret.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    front_port, stats_port = free_port(), free_port()
    public = f"https://127.0.0.1:{front_port}"
    password = "nodes-" + os.urandom(12).hex()
    base_env = {**os.environ, "TRUSTYARD_ADMIN_PASSWORD": password}
    ports = [free_port() for _ in range(NODES)]
    names = [f"node{n + 1}" for n in range(NODES)]
    # node1 gets the key in the environment, the others as a file: the two ways the docs give.
    configs = [
        _node_config(directory, name, database, store, tls, public, None if n == 0 else key_file)
        for n, name in enumerate(names)
    ]
    envs = [{**base_env, "TRUSTYARD_SECRET_KEY": key}, base_env, base_env]
    nodes: list[Node] = []
    haproxy: Server | None = None
    try:
        # All at once, as `compose up` starts them: migrations, the shared keys and admin are race-safe.
        nodes = [_start_node(directory, n, c, p, e) for n, c, p, e in zip(names, configs, ports, envs, strict=True)]
        for node in nodes:
            wait_until(_ready(node, tls.ca_cert), node.server, node.name, timeout=90)
        bundle = directory / "haproxy.pem"  # HAProxy wants the certificate and its key in one file
        bundle.write_bytes(tls.cert.read_bytes() + tls.key.read_bytes())
        config = directory / "haproxy.cfg"
        config.write_text(
            _haproxy_config(front_port, stats_port, bundle, tls.ca_cert, list(zip(names, ports, strict=True)))
        )
        haproxy = Server(["haproxy", "-db", "-f", config], directory / "haproxy.log")
        certs = directory / "certs"
        certs.mkdir()
        shutil.copy(tls.ca_cert, certs / "ca.crt")
        front = Registry("trustyard", directory, front_port, haproxy, cert_dir=certs, password=password)

        def all_up() -> bool:
            try:
                status = backend_status(stats_port)
            except httpx.TransportError:
                return False
            return sorted(status.values()) == ["UP"] * NODES

        wait_until(all_up, haproxy, "haproxy")
        front.secret = create_app_token(front, ADMIN, password, "nodes")
        clients.login(front)
        yield Cluster(front, nodes, haproxy, stats_port, tls, configs, base_env)
    finally:
        stopping = [threading.Thread(target=server.stop) for server in [node.server for node in nodes]]
        if haproxy is not None:
            stopping.append(threading.Thread(target=haproxy.stop))
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        _empty(store)
        store.remove()


def _empty(store: Store) -> None:
    """Delete the container's objects over a few kept-alive connections at once: Store.remove's one request at a
    time takes minutes for what 16 clients pushed (SLO segments included)."""
    url, headers = store._swift_session()
    with httpx.Client(headers=headers, timeout=60) as http, ThreadPoolExecutor(8) as pool:
        # Every object, SLO manifests and their segments alike (each is listed): what is left, remove() takes.
        list(pool.map(lambda name: http.delete(f"{url}/{quote(name)}"), store.names()))


# --------------------------------------------------------------------------------------------------------
# One registry


def _nodes_that_served(cluster: Cluster, needle: str) -> list[str]:
    return [node.name for node in cluster.nodes if needle in node.log()]


def test_an_upload_whose_requests_land_on_different_nodes_completes(cluster: Cluster) -> None:
    data = random.Random(12).randbytes(5 * 64 * 1024)
    digest = sha256_digest(data)
    with cluster.front.http() as http:
        start = http.post("/v2/nodes/chunked/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        upload_id = location.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
        offset = 0
        for n in range(5):
            chunk = data[n * 65536 : (n + 1) * 65536]
            headers = {
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Type": "application/octet-stream",
            }
            patch = http.patch(location, content=chunk, headers=headers)
            assert patch.status_code == 202, patch.text
            location, offset = patch.headers["Location"], offset + len(chunk)
        done = http.put(location, params={"digest": digest})
        assert done.status_code == 201, done.text
        pulled = http.get(f"/v2/nodes/chunked/blobs/{digest}")
        assert pulled.status_code == 200
        assert sha256_digest(pulled.content) == digest
    served = _nodes_that_served(cluster, upload_id)
    assert len(served) > 1, f"every request of upload {upload_id} went to {served}"


def test_skopeo_podman_and_docker_push_and_pull_through_the_balancer(
    cluster: Cluster, clients: Clients, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    front = cluster.front
    image = random_image(4242, size=256 * 1024)
    layout = write_oci_layout(tmp_path / "in", {"v1": image})
    assert clients.push(layout, "v1", front.ref("nodes/skopeo", "v1")) == image.digest
    clients.copy(front.ref("nodes/skopeo", "v1"), f"oci:{tmp_path / 'out'}:v1")
    assert sha256_digest(clients.inspect_raw(front.ref("nodes/skopeo", "v1"))) == image.digest
    assert (tmp_path / "out" / "blobs" / "sha256" / image.layers[0].digest.removeprefix("sha256:")).read_bytes() == (
        image.layers[0].data
    )

    # podman pulls what skopeo pushed, and pushes it again under another name (a real image for docker below).
    busybox = write_oci_layout(tmp_path / "busybox", {"latest": busybox_image("nodes")})
    assert clients.push(busybox, "latest", front.ref("nodes/busybox", "latest")) == busybox_image("nodes").digest
    clients.podman("pull", *front.tls_flags(), f"{front.host}/nodes/busybox:latest", store="nodes")
    pushed_ref = f"{front.host}/nodes/podman:v1"
    clients.podman("tag", f"{front.host}/nodes/busybox:latest", pushed_ref, store="nodes")
    digest_file = tmp_path / "podman.digest"
    clients.podman("push", *front.tls_flags(), "--digestfile", digest_file, pushed_ref, store="nodes")
    pushed = digest_file.read_text().strip()
    assert sha256_digest(clients.inspect_raw(f"docker://{pushed_ref}")) == pushed
    clients.podman("pull", *front.tls_flags(), f"{front.host}/nodes/podman@{pushed}", store="nodes-again")
    again = json.loads(
        clients.podman("image", "inspect", f"{front.host}/nodes/podman@{pushed}", store="nodes-again").stdout
    )
    assert again[0]["Digest"] == pushed

    try:
        docker: Docker = request.getfixturevalue("docker_engine")
    except pytest.skip.Exception:
        return  # dockerd cannot run here: skopeo and podman have shown it
    docker.login(front)
    tag = f"{front.host}/nodes/docker:v1"
    docker("pull", pushed_ref)
    docker("tag", pushed_ref, tag)
    out = docker("push", tag).stdout
    found = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
    assert found, out
    docker("rmi", tag, pushed_ref)
    pulled = docker("pull", tag).stdout
    assert found.group(1) in pulled
    print(f"docker pushed and pulled {tag} through HAProxy: {found.group(1)}")


def test_a_token_from_one_node_is_accepted_by_another(cluster: Cluster) -> None:
    first, second = cluster.nodes[0], cluster.nodes[1]
    issued = httpx.get(
        f"{first.url}/auth/token",
        params={"service": "trustyard", "scope": "repository:nodes/skopeo:pull"},
        auth=(ADMIN, cluster.front.password or ""),
        verify=cluster.verify(),
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["token"]
    tags = httpx.get(
        f"{second.url}/v2/nodes/skopeo/tags/list", headers={"Authorization": f"Bearer {token}"}, verify=cluster.verify()
    )
    assert tags.status_code == 200, tags.text
    assert tags.json()["tags"] == ["v1"]


def test_a_web_session_survives_hopping_nodes(cluster: Cluster) -> None:
    first, second = cluster.nodes[0], cluster.nodes[2]
    with httpx.Client(base_url=first.url, verify=cluster.verify()) as browser:
        page = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text
        login = browser.post(
            "/login", data={"csrf": csrf.group(1), "username": ADMIN, "password": cluster.front.password or ""}
        )
        assert login.status_code in (302, 303), login.text
        cookie = login.cookies.get("trustyard_session") or browser.cookies.get("trustyard_session")
        assert cookie
    elsewhere = httpx.get(
        f"{second.url}/account", cookies={"trustyard_session": cookie}, verify=cluster.verify(), follow_redirects=False
    )
    assert elsewhere.status_code == 200, (elsewhere.status_code, elsewhere.headers.get("location"))
    assert ADMIN in elsewhere.text


def test_a_node_without_the_secret_key_says_so_and_does_not_start(cluster: Cluster, tmp_path: Path) -> None:
    config = json.loads(cluster.config[1].read_text())
    del config["secret_key_file"]
    keyless = tmp_path / "keyless.yml"
    keyless.write_text(json.dumps(config))
    env = {k: v for k, v in cluster.env.items() if k != "TRUSTYARD_SECRET_KEY"}
    started = subprocess.run(
        [
            trustyard_bin(),
            "serve",
            "--config",
            keyless,
            "--data-dir",
            tmp_path / "data",
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "TRUSTYARD_SECRET_KEY" in started.stderr
    assert "secret_key_file" in started.stderr
    assert "listening" not in started.stderr


# --------------------------------------------------------------------------------------------------------
# A node dies under load


@dataclass
class Ledger:
    acknowledged: dict[tuple[str, str], Pushed] = field(default_factory=dict)
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    pulls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _with_retries(ledger: Ledger, operation: Callable[[], T], attempts: int = 8) -> T:
    """As registry clients do: on a connection error or a failed request, wait a little and do it again
    (a push starts its blob uploads afresh)."""
    for attempt in range(attempts):
        try:
            return operation()
        except (httpx.TransportError, AssertionError):
            if attempt == attempts - 1:
                raise
            with ledger.lock:
                ledger.retries += 1
            time.sleep(0.3 * (attempt + 1))
    raise AssertionError("unreachable")


def _client(cluster: Cluster, number: int, ledger: Ledger, until: float, stop: threading.Event) -> None:
    rng = random.Random(number)
    repo = f"nodes/load{number}"
    with cluster.front.http() as http:
        count = 0
        while time.monotonic() < until and not stop.is_set():
            tag = f"t{count}"
            try:
                pushed = _with_retries(ledger, partial(push_image, http, repo, tag, rng, None))
                with ledger.lock:
                    ledger.acknowledged[(repo, tag)] = pushed
                earlier = f"t{rng.randrange(count + 1)}"
                with ledger.lock:
                    image = ledger.acknowledged.get((repo, earlier))
                if image is not None:
                    _with_retries(ledger, partial(pull_and_verify, http, repo, earlier, image))
                    with ledger.lock:
                        ledger.pulls += 1
            except Exception as exc:
                with ledger.lock:
                    ledger.failures.append(f"{repo}:{tag}: {exc!r}"[:500])
            count += 1


def test_kill_9_of_a_node_during_16_clients_loses_nothing_acknowledged(cluster: Cluster) -> None:
    """Runs last in this module: it kills node2 once the clients are well under way, and lets them go on."""
    ledger = Ledger()
    until = time.monotonic() + 120  # a bound; the clients stop when `stop` says so
    stop = threading.Event()
    threads = [threading.Thread(target=_client, args=(cluster, n, ledger, until, stop)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(ledger.acknowledged) < CLIENTS and time.monotonic() < deadline:
        time.sleep(0.1)
    victim = cluster.nodes[1]
    os.killpg(victim.server.proc.pid, signal.SIGKILL)  # the node and every worker of it, no goodbye
    victim.server.proc.wait()
    before = len(ledger.acknowledged)
    assert before >= CLIENTS, f"only {before} pushes in a minute before the kill"
    deadline = time.monotonic() + 10  # HAProxy's checks: every 0.5 s, two failures in a row take it out
    while not cluster.backend_status()[victim.name].startswith("DOWN") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.backend_status()[victim.name].startswith("DOWN"), cluster.backend_status()
    time.sleep(AFTER_KILL_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    failed = ledger.failures
    assert not failed, f"{len(failed)} client operations failed despite retries: {failed[:5]}"
    assert len(ledger.acknowledged) >= before + CLIENTS  # work went on after the kill
    assert ledger.pulls > 0
    with cluster.front.http() as http:
        for (repo, tag), image in sorted(ledger.acknowledged.items()):
            pull_and_verify(http, repo, tag, image)
    print(
        f"{len(ledger.acknowledged)} pushes acknowledged ({before} before the kill), "
        f"{ledger.pulls} pulls, {ledger.retries} retries; all pulled back by digest"
    )
