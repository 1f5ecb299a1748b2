"""End-to-end tests with real registry clients: skopeo, podman, buildah, docker and oras.

The helpers shared by conftest.py and the test modules live here (conftest.py is not meant to be imported):

* `start_registry` runs the registry under test (`trustyard serve`, or CNCF Distribution's `docker-registry`
  when `TRUSTYARD_TEST_TARGET=distribution`) as a real process on a free loopback port;
* `Clients` runs skopeo, podman and buildah with their configuration and storage confined to a temporary
  directory, so that tests never read or write the machine's own container storage or credentials;
* `Image`, `ImageIndex` and `write_oci_layout` build test images in plain Python (tarfile, json, hashlib) as
  OCI image layouts, deterministically: the same arguments always give the same digests.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]

TARGETS = ("trustyard", "distribution")
TARGET = os.environ.get("TRUSTYARD_TEST_TARGET", "trustyard")
if TARGET not in TARGETS:
    raise RuntimeError(f"TRUSTYARD_TEST_TARGET={TARGET!r}: expected one of {', '.join(TARGETS)}")

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: one static binary, runs from scratch
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 180.0

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


# --------------------------------------------------------------------------------------------------------
# Processes


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a client command without stdin; on failure, fail with its command line and output."""
    args = [os.fspath(c) for c in cmd]
    proc = subprocess.run(
        args,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed with exit code {proc.returncode}: {' '.join(args)}\n"
            f"--- stdout ---\n{tail(proc.stdout)}\n--- stderr ---\n{tail(proc.stderr)}"
        )
    return proc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A background process in its own process group, with stdout and stderr in a log file."""

    def __init__(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ):
        self.cmd = [os.fspath(c) for c in cmd]
        self.log = log
        with log.open("ab") as out:
            # A new session: stop() can then signal the server and every worker or helper it spawned.
            # The log's directory as working directory by default: where pytest was started from must not matter.
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=cwd or log.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return tail(self.log.read_text(errors="replace"), lines)
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
        pgid = self.proc.pid
        if self.alive():
            _signal_group(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        # Workers may outlive their parent for a moment; the group id is still ours.
        _signal_group(pgid, signal.SIGKILL)
        self.proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_until(check: Callable[[], bool], server: Server, what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll `check()` until it is true; fail with the server's log tail if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if not server.alive():
            raise AssertionError(
                f"{what} exited with code {server.proc.returncode} before it was ready: "
                f"{' '.join(server.cmd)}\n"
                f"--- log tail ({server.log}) ---\n{server.log_tail()}"
            )
        if check():
            return
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(
                f"{what} not ready after {timeout:.0f} s: {' '.join(server.cmd)}\n"
                f"--- log tail ({server.log}) ---\n{server.log_tail()}"
            )
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------------------
# Registries


def trustyard_bin() -> Path:
    """The `trustyard` script of the interpreter running the tests, else the repository's .venv."""
    here = Path(sys.executable).parent / "trustyard"
    return here if here.exists() else REPO_ROOT / ".venv" / "bin" / "trustyard"


ADMIN = "admin"


@dataclass
class Registry:
    """A running registry: `url` is https://127.0.0.1:PORT (trustyard) or http:// (Distribution), `host` is
    127.0.0.1:PORT. trustyard's `cert_dir` holds its CA as `ca.crt` (fetched from `GET /ca`, as users do);
    `secret` is an app token of `admin`, the password clients log in with."""

    kind: str
    data_dir: Path
    port: int
    server: Server
    cert_dir: Path | None = None
    password: str | None = None  # admin's password
    secret: str | None = None  # an app token of admin
    address: str = "127.0.0.1"  # what clients connect to: an IP or a name that resolves to where it listens

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def tls(self) -> bool:
        return self.cert_dir is not None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def ca(self) -> Path | None:
        return self.cert_dir / "ca.crt" if self.cert_dir else None

    def tls_flags(self, prefix: str = "") -> list[str]:
        """containers/image flags: trust our CA (``--cert-dir``), or plain HTTP for Distribution."""
        if self.cert_dir is None:
            return [f"--{prefix}tls-verify=false"]
        return [f"--{prefix}cert-dir={self.cert_dir}"]

    def ssl_context(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca) if self.ca else False

    def http(self, username: str | None = ADMIN, secret: str | None = None) -> httpx.Client:
        """An HTTP client that verifies the CA and logs in through token auth (as admin by default)."""
        from ..tokenauth import DockerTokenAuth

        auth = None
        if self.tls and username is not None:
            auth = DockerTokenAuth(username, secret or self.secret, f"{self.url}/auth/token")
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), auth=auth, timeout=60)

    @property
    def storage_root(self) -> Path:
        """The root of Distribution's v2 layout: `storage_root/docker/registry/v2/...`."""
        return self.data_dir / "storage"

    def ref(self, repo: str, tag_or_digest: str = "") -> str:
        """`docker://` reference for skopeo: a tag, or a digest (`sha256:...`)."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"docker://{self.host}/{repo}" + (f"{sep}{tag_or_digest}" if tag_or_digest else "")

    def stop(self) -> None:
        self.server.stop()


def distribution_config(storage_root: Path, port: int, storage: Mapping[str, Any] | None = None) -> str:
    """Distribution's config.yml; `storage` (one driver block, e.g. ``{"s3": {...}}``) replaces the filesystem."""
    return json.dumps(  # JSON is YAML; no PyYAML needed
        {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {
                **(storage or {"filesystem": {"rootdirectory": str(storage_root)}}),
                "delete": {"enabled": True},
                # No purging of upload directories behind the tests' backs.
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": f"127.0.0.1:{port}", "secret": "trustyard-e2e"},
        },
        indent=2,
    )


def start_registry(
    kind: str,
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    database_url: str | None = None,
    storage: Mapping[str, Any] | None = None,
    address: str = "127.0.0.1",
) -> Registry:
    """Start `kind` ("trustyard" or "distribution") on `data_dir` and wait until `GET /v2/` answers.

    Both keep their blobs in Distribution's v2 layout under `data_dir/storage`. trustyard runs as users run
    it: TLS with its own CA, `admin` with a password (here given by TRUSTYARD_ADMIN_PASSWORD); the returned
    registry has the CA (fetched from `/ca`) and an app token of admin made through the admin API.
    `storage` is a Distribution-style storage block (e.g. ``{"s3": {...}}``) used instead: in trustyard's
    YAML config file (`--config`) or in Distribution's config.yml. `address` is what clients connect to: the
    registry listens on the IP it resolves to (a host name for clients that treat loopback IPs as plain HTTP).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir.parent / f"{data_dir.name}-{kind}-{port}.log"
    cmd: list[str | os.PathLike[str]]
    if kind == "trustyard":
        exe = trustyard_bin()
        if not exe.exists():
            raise AssertionError(f"{exe} does not exist: run `pip install -e .` (or set TRUSTYARD_TEST_TARGET)")
        cmd = [exe, "serve", "--data-dir", data_dir, "--listen", f"{socket.gethostbyname(address)}:{port}"]
        password = "e2e-" + os.urandom(12).hex()
        env = {**(env or {}), "TRUSTYARD_ADMIN_PASSWORD": password}
        if database_url:
            env["TRUSTYARD_DATABASE_URL"] = database_url
        if storage is not None:
            config_file = data_dir.parent / f"{data_dir.name}-config.yml"
            config_file.write_text(json.dumps({"storage": storage}, indent=2))  # JSON is YAML
            cmd += ["--config", config_file]
    elif kind == "distribution":
        exe_path = shutil.which("docker-registry")
        if exe_path is None:
            raise AssertionError(
                "docker-registry (CNCF Distribution) is not installed: apt-get install docker-registry"
            )
        config = data_dir / "config.yml"
        config.write_text(distribution_config(data_dir / "storage", port, storage))
        cmd = [exe_path, "serve", config]
    else:
        raise ValueError(f"unknown registry kind {kind!r}")

    full_env = {**os.environ, **(env or {})}
    if kind == "distribution":
        full_env.pop("AWS_CA_BUNDLE", None)  # aws-sdk-go in Distribution 2.8 fails on it with a plain-HTTP endpoint
    server = Server(cmd, log, env=full_env)
    registry = Registry(kind=kind, data_dir=data_dir, port=port, server=server, address=address)
    if kind == "trustyard":
        registry.cert_dir = data_dir.parent / f"{data_dir.name}-certs"
        registry.password = password

    def ready() -> bool:
        try:
            if registry.cert_dir is None:
                return httpx.get(f"{registry.url}/v2/", timeout=2.0).status_code == 200
            # Trust on first use, as the docs tell users: fetch the CA without verifying, then verify with it.
            ca = httpx.get(f"{registry.url}/ca", timeout=2.0, verify=False)
            if ca.status_code != 200:
                return False
            registry.cert_dir.mkdir(exist_ok=True)
            (registry.cert_dir / "ca.crt").write_bytes(ca.content)
            return httpx.get(f"{registry.url}/v2/", timeout=2.0, verify=registry.ssl_context()).status_code == 401
        except httpx.TransportError:
            return False

    wait_until(ready, server, f"{kind} registry")
    if registry.tls:
        registry.secret = create_app_token(registry, ADMIN, password, "e2e")
    return registry


def create_app_token(registry: Registry, user: str, password: str, name: str) -> str:
    """An app token of `user` through the admin API (Basic with the password)."""
    response = httpx.post(
        f"{registry.url}/api/v1/users/{user}/tokens",
        json={"name": name},
        auth=(user, password),
        verify=registry.ssl_context(),
        timeout=60,
    )
    assert response.status_code == 201, f"creating an app token: {response.status_code} {response.text}"
    secret: str = response.json()["token"]
    return secret


# --------------------------------------------------------------------------------------------------------
# Images


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Image:
    """One image manifest with its config and (compressed) layers."""

    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    platform: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def blobs(self) -> list[Blob]:
        return [self.manifest, self.config, *self.layers]


@dataclass(frozen=True)
class ImageIndex:
    """An OCI image index (multi-arch image) and the images it lists."""

    index: Blob
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return self.index.digest

    def blobs(self) -> list[Blob]:
        return [self.index, *(blob for image in self.images for blob in image.blobs())]


def layer_tar(files: Mapping[str, bytes], symlinks: Mapping[str, str] | None = None) -> bytes:
    """A deterministic tar layer: parent directories, files (mode 0755), symlinks; owner root, mtime 0."""
    entries: dict[str, tarfile.TarInfo] = {}
    payloads: dict[str, bytes] = {}

    def add_parents(path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            name = "/".join(parts[:i])
            if name not in entries:
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                entries[name] = info

    for path, data in files.items():
        add_parents(path)
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(data), 0o755
        entries[path], payloads[path] = info, data
    for path, target in (symlinks or {}).items():
        add_parents(path)
        info = tarfile.TarInfo(path)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        entries[path] = info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            info = entries[name]
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(payloads[name]) if name in payloads else None)
    return buf.getvalue()


def make_image(
    tars: Sequence[bytes],
    *,
    architecture: str = "amd64",
    variant: str | None = None,
    cmd: Sequence[str] = ("/bin/sh",),
    labels: Mapping[str, str] | None = None,
) -> Image:
    """An OCI image from uncompressed layer tars (stored gzipped, with a fixed gzip header)."""
    layers = tuple(Blob(OCI_LAYER_GZIP, gzip.compress(t, compresslevel=6, mtime=0)) for t in tars)
    platform = {"architecture": architecture, "os": "linux", **({"variant": variant} if variant else {})}
    config = Blob(
        OCI_CONFIG,
        canonical_json(
            {
                **platform,
                "created": "1970-01-01T00:00:00Z",
                "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"], "Labels": dict(labels or {})},
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(t) for t in tars]},
                "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "trustyard e2e"} for _ in tars],
            }
        ),
    )
    manifest = Blob(
        OCI_MANIFEST,
        canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor() for layer in layers],
            }
        ),
    )
    return Image(manifest=manifest, config=config, layers=layers, platform=platform)


_busybox_tar: bytes | None = None


def busybox_tar() -> bytes:
    """A layer with Debian's static busybox as /bin/busybox and /bin/sh (built once per session)."""
    global _busybox_tar
    if _busybox_tar is None:
        _busybox_tar = layer_tar({"bin/busybox": BUSYBOX.read_bytes()}, symlinks={"bin/sh": "busybox"})
    return _busybox_tar


def busybox_image(label: str = "") -> Image:
    """busybox from scratch; a distinct `label` gives a distinct config (and digest) over the same layer."""
    return make_image([busybox_tar()], labels={"trustyard.e2e": label} if label else None)


def random_image(seed: int, size: int = 64 * 1024, shared: Sequence[bytes] = ()) -> Image:
    """A small image whose own layer holds `size` pseudo-random bytes drawn from `seed`."""
    data = random.Random(seed).randbytes(size)
    return make_image([*shared, layer_tar({f"data/{seed}.bin": data})], labels={"seed": str(seed)})


def multiarch_index(label: str = "") -> ImageIndex:
    """amd64 and arm64 variants of one tiny image: same layer, one config per platform."""
    tar = layer_tar({"etc/hello": f"hello {label}\n".encode()})
    images = (
        make_image([tar], architecture="amd64", cmd=["/bin/true"]),
        make_image([tar], architecture="arm64", variant="v8", cmd=["/bin/true"]),
    )
    index = Blob(
        OCI_INDEX,
        canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [image.manifest.descriptor(platform=image.platform) for image in images],
            }
        ),
    )
    return ImageIndex(index=index, images=images)


def write_oci_layout(path: Path, tagged: Mapping[str, Image | ImageIndex]) -> Path:
    """Write an OCI image layout directory holding each image under its tag (`oci:PATH:TAG`)."""
    blobs_dir = path / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    manifests = []
    for tag, image in tagged.items():
        for blob in image.blobs():
            (blobs_dir / blob.digest.removeprefix("sha256:")).write_bytes(blob.data)
        top = image.manifest if isinstance(image, Image) else image.index
        manifests.append(top.descriptor(annotations={REF_NAME: tag}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    (path / "index.json").write_text(json.dumps(index))
    return path


def oci_layout_descriptor(path: Path, tag: str) -> dict[str, Any]:
    """The descriptor that an OCI layout's index.json holds for `tag`."""
    index = json.loads((path / "index.json").read_text())
    found = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    assert len(found) == 1, f"{path}: tag {tag} in index.json: {index}"
    descriptor: dict[str, Any] = found[0]
    return descriptor


def oci_layout_blob(path: Path, digest: str) -> bytes:
    algorithm, hex_ = digest.split(":", 1)
    return (path / "blobs" / algorithm / hex_).read_bytes()


# --------------------------------------------------------------------------------------------------------
# Clients


POLICY = {"default": [{"type": "insecureAcceptAnything"}]}


@dataclass
class Clients:
    """skopeo, podman and buildah with all their state under `home`, never the machine's.

    `login(registry)` logs skopeo, podman and buildah in (one auth file, as `podman login` does) and records
    how to trust the registry: `--cert-dir` with its CA for trustyard, `--tls-verify=false` for Distribution.
    """

    home: Path
    env: dict[str, str] = field(init=False)
    policy: Path = field(init=False)
    # podman refuses a runroot longer than 50 characters (conmon's socket paths): those live in a short
    # directory of /tmp that close() removes.
    runroots: Path = field(init=False)
    registries: dict[str, Registry] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.runroots = Path(tempfile.mkdtemp(prefix="ty-", dir="/tmp"))
        self.policy = self.home / "policy.json"
        self.policy.write_text(json.dumps(POLICY))
        registries = self.home / "registries.conf"
        registries.write_text("unqualified-search-registries = []\nshort-name-mode = 'disabled'\n")
        storage = self.home / "storage.conf"
        storage.write_text(
            "[storage]\n"
            'driver = "vfs"\n'
            f'graphroot = "{self.home / "storage" / "root"}"\n'
            f'runroot = "{self.runroots / "default"}"\n'
        )
        containers = self.home / "containers.conf"
        containers.write_text('[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n')
        (self.home / "tmp").mkdir(exist_ok=True)
        (self.home / "auth.json").write_text('{"auths": {}}')  # buildah insists that REGISTRY_AUTH_FILE exists
        self.env = {
            **os.environ,
            "CONTAINERS_REGISTRIES_CONF": str(registries),
            "CONTAINERS_STORAGE_CONF": str(storage),
            "CONTAINERS_CONF": str(containers),
            "REGISTRY_AUTH_FILE": str(self.home / "auth.json"),
            "DOCKER_CONFIG": str(self.home / "docker-config"),
            "TMPDIR": str(self.home / "tmp"),
        }

    def login(self, registry: Registry) -> None:
        self.registries[registry.host] = registry
        if registry.tls:
            assert registry.secret is not None
            run(
                ["skopeo", "login", *registry.tls_flags(), "-u", ADMIN, "-p", registry.secret, registry.host],
                env=self.env,
            )

    def tls_flags(self, ref: str, prefix: str = "") -> list[str]:
        """The trust flags for the registry `ref` (docker://HOST/... or HOST/...) names."""
        host = ref.removeprefix("docker://").split("/", 1)[0]
        registry = self.registries.get(host)
        return registry.tls_flags(prefix) if registry else [f"--{prefix}tls-verify=false"]

    # skopeo ---------------------------------------------------------------------------------------------

    def skopeo(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["skopeo", "--policy", self.policy, *args], env=self.env, check=check)

    def copy(self, src: str, dest: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`skopeo copy`; returns the process (with `--digestfile`, read the digest from there)."""
        tls = [
            flag
            for side, ref in (("src", src), ("dest", dest))
            if _remote(ref)
            for flag in self.tls_flags(ref, f"{side}-")
        ]
        return self.skopeo("copy", "--quiet", *tls, *extra, src, dest, check=check)

    def push(self, layout: Path, tag: str, dest: str, *extra: str) -> str:
        """Copy `oci:layout:tag` to `dest` and return the digest skopeo reports for what it pushed."""
        digest_file = self.home / "tmp" / f"digest-{os.urandom(6).hex()}"
        self.copy(f"oci:{layout}:{tag}", dest, "--digestfile", str(digest_file), *extra)
        return digest_file.read_text().strip()

    def inspect_raw(self, ref: str, *, config: bool = False) -> bytes:
        """The manifest (or config) bytes exactly as the registry serves them."""
        args = ["skopeo", "--policy", str(self.policy), "inspect", "--raw", *self.tls_flags(ref)]
        proc = subprocess.run(  # bytes, not text: the digest is of the exact bytes
            [*args, *(["--config"] if config else []), ref],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, f"skopeo inspect --raw {ref}: {proc.stderr.decode(errors='replace')}"
        return proc.stdout

    def inspect(self, ref: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.skopeo("inspect", *self.tls_flags(ref), ref, check=check)

    def list_tags(self, ref: str) -> list[str]:
        out = json.loads(self.skopeo("list-tags", *self.tls_flags(ref), ref).stdout)
        tags: list[str] = out["Tags"]
        return sorted(tags)

    # podman and buildah ---------------------------------------------------------------------------------

    def close(self) -> None:
        shutil.rmtree(self.runroots, ignore_errors=True)

    def storage_flags(self, name: str) -> list[str]:
        """Per-tool storage (vfs: no overlay mounts or fuse needed) under `home/name`."""
        root = self.home / name
        return ["--root", str(root / "root"), "--runroot", str(self.runroots / name), "--storage-driver", "vfs"]

    def podman(
        self, *args: str | os.PathLike[str], store: str = "podman", env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """podman with its storage under `home/store`; `env` replaces the clients' environment."""
        return run(
            [
                "podman",
                *self.storage_flags(store),
                "--tmpdir",
                str(self.home / store / "tmp"),
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
                *args,
            ],
            env=self.env if env is None else env,
        )

    def buildah(self, *args: str | os.PathLike[str], store: str = "buildah") -> subprocess.CompletedProcess[str]:
        return run(["buildah", *self.storage_flags(store), *args], env=self.env)


def _remote(ref: str) -> bool:
    return ref.startswith("docker://")


def local_blobs_ok(layout: Path, blobs: Iterable[Blob]) -> None:
    """Every blob is in the OCI layout at `layout` with the expected bytes."""
    for blob in blobs:
        assert oci_layout_blob(layout, blob.digest) == blob.data, f"{layout}: {blob.digest} differs"


# --------------------------------------------------------------------------------------------------------
# Docker engine

# dockerd log lines that mean the kernel or sandbox forbids what it needs (namespaces, mounts, cgroups),
# not a bug of ours: only then are the docker tests skipped instead of failed.
DOCKER_CERTS = Path("/etc/docker/certs.d")  # read by dockerd; each test registry adds (and removes) its port
KERNEL_REFUSALS = ("operation not permitted", "permission denied", "not supported", "no such device")


@dataclass
class Docker:
    """A private dockerd (vfs storage, no networking set-up) and a `docker -H` bound to its socket."""

    root: Path
    server: Server
    env: dict[str, str]
    client: str
    trusted: list[Path] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    def __call__(
        self, *args: str | os.PathLike[str], check: bool = True, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return run(
            [self.client, "-H", f"unix://{self.socket}", *args],
            env={**self.env, **env},
            cwd=cwd,
            check=check,
        )

    def stop(self) -> None:
        self.server.stop(grace=20.0)
        for path in self.trusted:
            shutil.rmtree(path, ignore_errors=True)

    def login(self, registry: Registry, user: str = ADMIN, secret: str | None = None, **env: str) -> None:
        """Trust the registry's CA, then log in (as admin with its password by default; `env` may move the
        client's config, e.g. HOME)."""
        if not registry.tls:
            return
        self.trust(registry)
        password = secret or registry.password
        assert password is not None
        self("login", "-u", user, "-p", password, registry.host, **env)

    def trust(self, registry: Registry) -> None:
        """Trust the registry's CA the documented way: /etc/docker/certs.d/HOST:PORT/ca.crt."""
        assert registry.ca is not None
        certs = DOCKER_CERTS / registry.host
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copy(registry.ca, certs / "ca.crt")
        if certs not in self.trusted:
            self.trusted.append(certs)


class DockerUnavailableError(Exception):
    """dockerd cannot run here because the kernel forbids it; the message has dockerd's log tail."""


def docker_client() -> str:
    """Debian's docker.io client, made for its dockerd, before any other `docker` on PATH."""
    debian = Path("/usr/bin/docker")
    return str(debian) if debian.exists() else (shutil.which("docker") or "docker")


def start_dockerd(root: Path, env: Mapping[str, str]) -> Docker:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise AssertionError("dockerd is not installed: apt-get install docker.io")
    if os.geteuid() != 0:
        raise DockerUnavailableError("dockerd needs root")
    root.mkdir(parents=True, exist_ok=True)
    cmd = [
        dockerd,
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        f"--data-root={root / 'root'}",
        f"--exec-root={root / 'exec'}",
        f"--host=unix://{root / 'docker.sock'}",
        f"--pidfile={root / 'docker.pid'}",
    ]
    server = Server(cmd, root / "dockerd.log", env=env)
    docker = Docker(root=root, server=server, env=dict(env), client=docker_client())

    def ready() -> bool:
        return docker("info", check=False).returncode == 0

    try:
        wait_until(ready, server, "dockerd")
    except AssertionError as exc:
        server.stop()
        errors = [line for line in server.log_tail(60).lower().splitlines() if "error" in line or "fatal" in line]
        if any(word in line for line in errors for word in KERNEL_REFUSALS):
            raise DockerUnavailableError(str(exc)) from exc
        raise
    return docker
