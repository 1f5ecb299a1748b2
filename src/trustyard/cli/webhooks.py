"""``trustyard webhook``: list, set and delete webhook endpoints and read their delivery log (as
Settings > Webhooks and ``/api/v1/webhooks`` do). Running servers pick a change up within seconds."""

from __future__ import annotations

import os
from pathlib import Path

import click
import yaml

from trustyard.cli.command import CONFIG, DATA_DIR, run, show
from trustyard.errors import InvalidRequest
from trustyard.services.webhook_settings import EndpointSettings, parse_endpoint


@click.group()
def webhook() -> None:
    """Webhook endpoints (Distribution's notifications) and their delivery log."""


@webhook.command("list")
@CONFIG
@DATA_DIR
def list_endpoints(config_file: Path | None, data_dir: Path | None) -> None:
    """Every endpoint; header values and secrets are never shown."""
    views = run(config_file, data_dir, lambda services, actor: services.webhooks.endpoints(actor))
    show({"endpoints": [view.as_document() for view in views]})


@webhook.command("set")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--url", help="Where events are POSTed (http:// or https://).")
@click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="One endpoint of a Distribution notifications: block (YAML or JSON), without its name.",
)
@click.option("--header", "headers", multiple=True, metavar="NAME=VALUE", help="A header sent with every event.")
@click.option("--secret-env", metavar="VAR", help="Sign with the HMAC key in this environment variable.")
@click.option("--timeout", help="Per request, e.g. 5s.")
@click.option("--threshold", type=int, help="Failures in a row before retries back off exponentially.")
@click.option("--backoff", help="Wait before a retry, e.g. 1s.")
@click.option("--ignore-action", "ignore_actions", multiple=True, help="push, pull, delete or mount: not sent.")
@click.option(
    "--ignore-media-type", "ignore_media_types", multiple=True, help="Events about this media type: not sent."
)
@click.option("--disabled", is_flag=True, help="Keep the endpoint but send nothing (events are not queued).")
def set_endpoint(
    config_file: Path | None,
    data_dir: Path | None,
    name: str,
    url: str | None,
    from_file: Path | None,
    headers: tuple[str, ...],
    secret_env: str | None,
    timeout: str | None,
    threshold: int | None,
    backoff: str | None,
    ignore_actions: tuple[str, ...],
    ignore_media_types: tuple[str, ...],
    disabled: bool,
) -> None:
    """Create or replace the endpoint NAME. A secret left out keeps the saved one."""
    document: dict[str, object] = {}
    if from_file is not None:
        try:
            loaded = yaml.safe_load(from_file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise click.UsageError(f"cannot read {from_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise click.UsageError(f"{from_file} must hold one endpoint: url, headers, timeout, ...")
        document.update(loaded)
    flags = {"url": url, "timeout": timeout, "threshold": threshold, "backoff": backoff}
    document.update({key: value for key, value in flags.items() if value is not None})
    if headers:
        document["headers"] = dict(_header(h) for h in headers)
    if secret_env:
        document["secret"] = _environment(secret_env)
    if ignore_actions or ignore_media_types:
        document["ignore"] = {"actions": list(ignore_actions), "mediatypes": list(ignore_media_types)}
    if disabled:
        document["disabled"] = True
    settings = _parse(document, name)
    view = run(config_file, data_dir, lambda services, actor: services.webhooks.save(actor, settings))
    show(view.as_document())


@webhook.command("delete")
@CONFIG
@DATA_DIR
@click.argument("name")
def delete_endpoint(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    """Delete the endpoint NAME and every event still queued for it."""
    run(config_file, data_dir, lambda services, actor: services.webhooks.remove(actor, name))
    click.echo(f"deleted webhook endpoint {name}")


@webhook.command("log")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True, help="How many deliveries.")
def delivery_log(config_file: Path | None, data_dir: Path | None, name: str, limit: int) -> None:
    """The newest deliveries of NAME, newest first, with the status of every attempt."""
    deliveries = run(config_file, data_dir, lambda services, actor: services.webhooks.deliveries(actor, name, limit))
    show({"deliveries": [delivery.as_document() for delivery in deliveries]})


def _parse(document: dict[str, object], name: str) -> EndpointSettings:
    try:
        return parse_endpoint(document, name)
    except InvalidRequest as exc:
        raise click.UsageError(exc.message) from None


def _header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.UsageError(f"--header {text!r}: expected NAME=VALUE")
    return key, value


def _environment(name: str) -> str:
    if name not in os.environ:
        raise click.UsageError(f"--secret-env {name}: the environment variable is not set")
    return os.environ[name]
