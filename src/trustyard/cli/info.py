"""``trustyard info``: the operator's view of the registry in one command (what ``GET /api/v1/info`` and the
web UI's home page show site admins): a few aligned lines for a person, or the whole ``Info`` as JSON."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from trustyard.cli.command import CONFIG, DATA_DIR, JSON, run, show
from trustyard.cli.gc import summary
from trustyard.services.info import Info, NodeSeen, expires_in


@click.command("info")
@CONFIG
@DATA_DIR
@JSON
def info(config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Version, URLs, TLS certificate and CA, storage (secrets masked), database, counts, nodes, last collection."""
    found = run(config_file, data_dir, lambda services, actor: services.info.info(actor))
    if as_json:
        show(found.as_document())
    else:
        click.echo("\n".join(lines(found)))


def lines(found: Info) -> list[str]:
    urls, storage, database, counts = found.urls, found.storage, found.database, found.counts
    rows = [
        ("Version", found.version),
        ("Listen", urls.listen),
        ("Public URL", urls.public_url or "(not set)"),
        ("Registry", urls.registry),
        ("CA download", urls.ca or "(no CA of the registry's own)"),
        ("Metrics", urls.metrics),
        ("Web UI", urls.web),
        *_tls(found),
        ("Storage", f"{storage.driver} ({storage.source})"),
        *((f"  {key}", str(value)) for key, value in sorted(storage.parameters.items())),
        *((f"  {key}", "set" if present else "not set") for key, present in sorted(storage.secrets.items())),
        ("Database", f"{database.url} ({database.dialect}, revision {database.revision or 'none'})"),
        (
            "Holds",
            f"{counts.repositories:,} repositories, {counts.tags:,} tags, {counts.manifests:,} manifests, "
            f"{counts.blobs:,} blobs, {_size(counts.bytes)}",
        ),
        *(("Node", _node(node)) for node in found.nodes),
        ("", found.nodes_note),
        ("Last collection", summary(found.last_gc) if found.last_gc else "none yet"),
    ]
    if found.gc_running:
        rows.append(("", "a collection is running now"))
    return [f"{label + ':' if label and not label.startswith(' ') else label:<17}{value}" for label, value in rows]


def _node(node: NodeSeen) -> str:
    where = f" (listen {node.listen})" if node.listen else ""
    line = f"{node.name}{where}{' (this node)' if node.this else ''}"
    if node.workers:
        line += f": {node.workers} workers, version {', '.join(node.versions)}, last seen {node.last_seen}"
    return line


def _tls(found: Info) -> list[tuple[str, str]]:
    tls = found.tls
    if tls is None:
        return [("TLS", "off (plain HTTP: TLS is terminated in front)")]
    rows = [("TLS certificate", str(tls.certificate))]
    if tls.facts is None:
        rows.append(("", "not created yet: `trustyard serve` creates it on first start"))
    else:
        days = expires_in(tls.facts.not_after) // dt.timedelta(days=1)
        rows.append(("  names", ", ".join(tls.facts.names) or "(none)"))
        rows.append(("  expires", f"{tls.facts.not_after:%Y-%m-%d %H:%M} UTC (in {days} days)"))
    rows.append(("CA fingerprint", tls.ca_fingerprint or "(no CA of the registry's own)"))
    return rows


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({size:,} bytes)"
        value /= 1024
    raise AssertionError("unreachable")
