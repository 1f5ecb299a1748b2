"""Settings > Webhooks: add an endpoint in the form, see its deliveries and their attempts, errors that keep
what was typed (never the secret), and endpoints from the config file shown read-only."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.registry.conftest import Registry, push_image, running
from tests.webhook_receiver import Receiver, receiver
from trustyard.services.webhook_settings import NotificationsSettings

from .conftest import Browser, browser_of

__all__ = ["receiver"]  # the fixture


async def test_add_an_endpoint_and_read_its_delivery_log(
    admin: Browser, registry: Registry, receiver: Receiver
) -> None:
    page = await admin.get("/settings/webhooks")
    assert "No endpoints yet" in page.text
    saved = await admin.post(
        "/settings/webhooks",
        {
            "name": "ci",
            "url": receiver.url,
            "secret": "form-secret",
            "headers": "Authorization: Bearer from-the-form",
            "timeout": "2s",
            "threshold": "2",
            "backoff": "10ms",
            "ignore_pull": "on",
        },
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/settings/webhooks/ci"
    await push_image(registry.client, "team/app", "1.0")
    for _ in range(600):
        if receiver.events():
            break
        await asyncio.sleep(0.05)
    assert receiver.received[0][0]["Authorization"] == "Bearer from-the-form"
    detail = await admin.get("/settings/webhooks/ci")
    assert "Saved the webhook endpoint ci" in detail.text
    assert "team/app:1.0" in detail.text
    assert "delivered" in detail.text
    assert "HTTP 200" in detail.text
    assert "form-secret" not in detail.text
    assert "from-the-form" not in detail.text  # header values are write-only
    assert 'type="checkbox" id="ignore-pull" name="ignore_pull" checked' in detail.text
    listing = await admin.get("/settings/webhooks")
    assert f"<code>{receiver.url}</code>" in listing.text


async def test_a_bad_url_says_why_and_keeps_what_was_typed(admin: Browser) -> None:
    await admin.get("/settings/webhooks")
    refused = await admin.post(
        "/settings/webhooks", {"name": "ci", "url": "ftp://files.example", "secret": "typed-secret", "timeout": "3s"}
    )
    assert refused.status_code == 400
    assert "not an http:// or https:// URL" in refused.text
    assert 'value="ftp://files.example"' in refused.text
    assert 'value="3s"' in refused.text
    assert "typed-secret" not in refused.text


async def test_endpoints_from_the_config_file_are_read_only(tmp_path: Path) -> None:
    block = NotificationsSettings.model_validate({"endpoints": [{"name": "fromfile", "url": "https://h.example/e"}]})
    async with running(tmp_path / "data", notifications=block) as registry:
        web = browser_of(registry)
        async with web.http:
            await web.login()
            page = await web.get("/settings/webhooks/fromfile")
            assert "set in the <strong>config file</strong>" in page.text
            assert '<fieldset class="plain" disabled>' in page.text
            refused = await web.post("/settings/webhooks", {"name": "fromfile", "url": "https://other.example/"})
            assert refused.status_code == 409, refused.text
            assert "change it there" in refused.text
