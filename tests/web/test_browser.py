"""The web UI in real headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
``trustyard serve`` over TLS with two workers: log in, browse, manage accounts, and switch storage through
Settings > Storage to S3 (Swift's S3 API, then moto) and to Swift, pushing with skopeo after each save, seeing
the tag in the UI and deleting it there. Wrong credentials show the backend's own error and keep the backend.

Every page is saved as a screenshot at 1280 and 390 pixels wide, into a temporary directory: a test run leaves
the checkout as it was. ``TRUSTYARD_TEST_SCREENSHOTS=docs/screenshots`` saves them where the README shows them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import Clients, Registry, busybox_image, multiarch_index, start_registry, write_oci_layout
from tests.storage.s3_store import boto_client, endpoint
from tests.webhook_receiver import ThreadedReceiver
from trustyard import __version__
from trustyard.app import SETTINGS_POLL_SECONDS

sync_api = pytest.importorskip("playwright.sync_api")
Page = sync_api.Page
expect = sync_api.expect

pytestmark = pytest.mark.clients

CHROMIUM = Path(os.environ.get("TRUSTYARD_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE, NARROW = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


@dataclass
class Site:
    registry: Registry
    clients: Clients
    page: Page
    layout: Path
    screenshots: Path

    def go(self, path: str) -> Page:
        self.page.goto(self.registry.url + path)
        return self.page

    def shoot(self, name: str, path: str | None = None) -> None:
        """Screenshots of the current page (or ``path``) at both widths: NAME-1280.png and NAME-390.png."""
        if path is not None:
            self.go(path)
        for size in (NARROW, WIDE):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=self.screenshots / f"{name}-{size['width']}.png", full_page=True)

    def push(self, repo: str, tag: str, *extra: str) -> None:
        self.clients.push(self.layout, tag, self.registry.ref(repo, tag), *extra)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/test installs Debian's chromium)")
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (scripts/test installs it)")
    base = tmp_path_factory.mktemp("web-browser")
    screenshots = Path(os.environ.get("TRUSTYARD_TEST_SCREENSHOTS") or base / "screenshots")
    screenshots.mkdir(parents=True, exist_ok=True)
    layout = write_oci_layout(base / "layout", {"1.0": busybox_image("web"), "multi": multiarch_index("web")})
    registry = start_registry("trustyard", base / "data", env={"TRUSTYARD_WORKERS": "2"})
    clients = Clients(base / "clients")
    try:
        clients.login(registry)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(ignore_https_errors=True, viewport=WIDE, reduced_motion="reduce")
            context.set_default_timeout(30_000)
            try:
                yield Site(registry, clients, context.new_page(), layout, screenshots)
            finally:
                context.close()
                browser.close()
    finally:
        clients.close()
        registry.stop()


def _log_in(site: Site) -> None:
    page = site.go("/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password", exact=True).fill(site.registry.password or "")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Repositories")).to_be_visible()


def test_log_in_browse_and_delete_a_tag(site: Site) -> None:
    page = site.go("/login")
    site.shoot("login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password", exact=True).fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    site.shoot("login-failed")
    _log_in(site)
    site.shoot("repositories-empty")
    site.push("web/app", "1.0")
    site.push("web/app", "multi", "--all")
    site.push("web/tools", "1.0")
    page = site.go("/repositories")
    expect(page.get_by_role("link", name="web/app")).to_be_visible()
    app = page.get_by_role("row").filter(has=page.get_by_role("link", name="web/app", exact=True))
    expect(app.locator('td[data-label="Tags"]')).to_have_text("2")
    expect(app.locator('td[data-label="Size"]')).to_have_text(re.compile(r"^[\d.]+ (Bytes|KiB|MiB)$"))
    expect(app.locator('td[data-label="Last push"]')).to_contain_text(" UTC")
    expect(page.get_by_role("contentinfo")).to_contain_text(f"Pull address {site.registry.host}")
    expect(page.get_by_role("contentinfo")).to_contain_text(f"trustyard {__version__}")
    site.shoot("repositories")
    page.get_by_label("Search repositories").fill("tools")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="web/tools")).to_be_visible()
    expect(page.get_by_role("link", name="web/app", exact=True)).to_have_count(0)

    page = site.go("/repositories/web/app")
    expect(page.get_by_role("row", name=re.compile(r"^multi "))).to_contain_text("linux/amd64, linux/arm64/v8")
    expect(page.get_by_role("row", name=re.compile(r"^1\.0 "))).to_contain_text("by admin")
    expect(page.get_by_label("Pull command")).to_have_value(re.compile(r"docker pull 127\.0\.0\.1:\d+/web/app:"))
    site.shoot("repository")
    page.get_by_role("link", name="Delete tag multi").click()
    expect(page.get_by_role("heading", name="Delete the tag multi?")).to_be_visible()
    site.shoot("delete-tag")
    page.get_by_role("button", name="Delete tag multi").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted the tag multi from web/app")
    expect(page.get_by_role("row", name=re.compile(r"^multi "))).to_have_count(0)
    assert site.clients.list_tags(site.registry.ref("web/app")) == ["1.0"]


def test_keyboard_skip_link_and_focus(site: Site) -> None:
    page = site.go("/repositories")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Search repositories")).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_accounts_teams_grants_and_audit(site: Site) -> None:
    page = site.go("/admin/users")
    page.get_by_label("User name").fill("alice")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_label("Password of alice", exact=True)).to_have_value(re.compile(r".{12,}"))
    site.shoot("users")
    page = site.go("/admin/organizations")
    page.get_by_label("Organization name").fill("acme")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("heading", name="Organization acme")).to_be_visible()
    page.get_by_label("Team name").fill("devs")
    page.get_by_role("button", name="Create team").click()
    page.get_by_label("Add a member (user name)").fill("alice")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_contain_text("Added alice to acme/devs")
    site.shoot("team")
    site.shoot("organizations", "/admin/organizations")
    page = site.go("/admin/grants")
    page.get_by_label("Repository or namespace").fill("acme/*")
    page.get_by_label("Role", exact=True).select_option("read-write")
    page.get_by_label("a team").check()
    page.get_by_label("User name, or team as organization/team").fill("acme/devs")
    page.get_by_role("button", name="Give role").click()
    expect(page.get_by_role("row", name="team acme/devs")).to_contain_text("read-write")
    site.shoot("grants")
    page = site.go("/admin/audit")
    page.get_by_label("Action", exact=True).fill("team.member.add")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="acme/devs")).to_be_visible()
    site.shoot("audit", "/admin/audit")
    site.shoot("trust", "/trust")


def test_account_page_password_and_app_tokens(site: Site) -> None:
    page = site.go("/account")
    if "/login" in page.url:
        _log_in(site)
        page = site.go("/account")
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_label("Token name").fill("ci-pull")
    page.get_by_label("Pull only (read-only)").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("New app token ci-pull").input_value()
    assert secret.startswith("tyt_")
    expect(page.get_by_role("row", name=re.compile(r"^ci-pull "))).to_contain_text("pull only")
    site.shoot("account")
    page = site.go("/account")
    expect(page.get_by_text(secret)).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke the token ci-pull").click()
    expect(page.get_by_role("status")).to_contain_text("Revoked the token")
    password = site.registry.password or ""
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New password", exact=True).fill("a-new-admin-password")
    page.get_by_label("New password again").fill("a-new-admin-password")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("current password is wrong")
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password again").fill(password)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")


# Settings > Storage -----------------------------------------------------------------------------------


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save", exact=True).first.click()
    # By id: while the new backend is being indexed, its progress is a second status region on the page.
    expect(page.locator("#flash")).to_contain_text("Saved.")
    time.sleep(SETTINGS_POLL_SECONDS + 1)  # the other worker picks the change up within one poll


def _fill_s3(page: Page, url: str, bucket: str, access: str, secret: str) -> None:
    page.get_by_label("Cloud", exact=True).check()
    page.get_by_label("Amazon S3").check()
    page.get_by_label("Root directory", exact=True).last.fill("/registry")
    page.get_by_label("AWS Region name").fill("us-east-1")
    page.get_by_label("S3 bucket name").fill(bucket)
    page.get_by_label("AWS access key").fill(access)
    page.get_by_label("AWS secret key").fill(secret)
    page.get_by_label("Region endpoint").fill(url)  # in the main form, as the seed draws it
    if not page.get_by_label("Use path-style addressing").is_visible():
        page.locator("fieldset.section-s3").get_by_text("Advanced settings").click()
    page.get_by_label("Use path-style addressing").check()


def _push_see_delete(site: Site, repo: str, objects: int | None = None) -> None:
    site.push(repo, "1.0")
    page = site.go(f"/repositories/{repo}")
    expect(page.get_by_role("row", name=re.compile(r"^1\.0 "))).to_contain_text("by admin")
    page.get_by_role("link", name="Delete tag 1.0").click()
    page.get_by_role("button", name="Delete tag 1.0").click()
    expect(page.get_by_role("status")).to_contain_text(f"Deleted the tag 1.0 from {repo}")
    expect(page.get_by_text("This repository has no tags.")).to_be_visible()


def _bucket(store: str) -> tuple[str, str, str, str, object]:
    where = endpoint(store)
    name = f"web-{uuid.uuid4().hex[:12]}"
    client = boto_client(where)
    client.create_bucket(Bucket=name)
    return where.url, name, where.access, where.secret, client


def _keys(client: object, bucket: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix="registry/docker/registry/v2/")  # type: ignore[attr-defined]
    return [item["Key"] for item in listed.get("Contents", [])]


def test_storage_s3_then_wrong_secret_then_moto_then_swift(site: Site) -> None:
    page = site.go("/settings/storage")
    expect(page.get_by_role("button", name="Migrate to this backend").first).to_be_visible()
    expect(page.get_by_text("No migration has run.")).to_be_visible()
    site.shoot("storage-filesystem")

    url, bucket, access, secret, client = _bucket("swift")  # Swift's S3 API: it checks signatures
    page = site.go("/settings/storage")
    _fill_s3(page, url, bucket, access, secret)
    page.get_by_role("button", name="Test", exact=True).first.click()
    expect(page.locator("#storage-result")).to_contain_text("Test passed")
    _fill_s3(page, url, bucket, access, secret)
    _save(page)
    expect(page.get_by_text("In use: Amazon S3")).to_be_visible()
    expect(page.get_by_label("S3 bucket name")).to_have_value(bucket)
    expect(page.locator("#s3_secretkey-hint")).to_contain_text("set leave empty to keep")
    site.shoot("storage-s3")
    _push_see_delete(site, "web/on-s3")
    assert any("/_layers/" in key for key in _keys(client, bucket)), "the push did not land in the bucket"

    # A wrong secret: the backend's own error, the form kept (but not the secret), the backend unchanged.
    other_url, other_bucket, other_access, _secret, _client = _bucket("swift")
    page = site.go("/settings/storage")
    _fill_s3(page, other_url, other_bucket, other_access, "not-the-secret")
    page.get_by_role("button", name="Save", exact=True).first.click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("probe object failed")
    expect(alert).to_contain_text(re.compile("SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"))
    expect(page.get_by_label("S3 bucket name")).to_have_value(other_bucket)
    expect(page.get_by_label("AWS secret key")).to_have_value("")
    site.shoot("storage-error")
    page = site.go("/settings/storage")
    expect(page.get_by_label("S3 bucket name")).to_have_value(bucket)

    url, bucket, access, secret, client = _bucket("moto")
    page = site.go("/settings/storage")
    _fill_s3(page, url, bucket, access, secret)
    _save(page)
    _push_see_delete(site, "web/on-moto")
    assert any("/_layers/" in key for key in _keys(client, bucket)), "the push did not land in moto"

    page = site.go("/settings/storage")
    page.get_by_label("OpenStack Swift").check()
    page.get_by_label("Authorization URL").fill(os.environ.get("SWIFT_AUTH_URL", "http://127.0.0.1:8080/auth/v1.0"))
    page.get_by_label("Username").fill(os.environ.get("SWIFT_USERNAME", "test:tester"))
    page.get_by_label("Password or API key").fill(os.environ.get("SWIFT_PASSWORD", "testing"))
    page.get_by_label("Container").fill(f"web-{uuid.uuid4().hex[:12]}")
    _save(page)
    expect(page.get_by_text("In use: OpenStack Swift")).to_be_visible()
    site.shoot("storage-swift")
    _push_see_delete(site, "web/on-swift")

    # Back to the filesystem: the images pushed there at first are listed again.
    page = site.go("/settings/storage")
    page.get_by_label("Filesystem", exact=True).check()
    page.get_by_label("Root directory", exact=True).first.fill(str(site.registry.data_dir.resolve() / "storage"))
    _save(page)
    page = site.go("/repositories")
    expect(page.get_by_role("link", name="web/app")).to_be_visible()


def test_webhook_endpoint_and_its_delivery_log(site: Site) -> None:
    """Settings > Webhooks: add an endpoint pointing at a receiver on loopback, push with skopeo, read the log."""
    receiver = ThreadedReceiver()
    try:
        page = site.go("/settings/webhooks")
        if "/login" in page.url:
            _log_in(site)
            page = site.go("/settings/webhooks")
        page.get_by_label("Name", exact=True).fill("ci")
        page.get_by_label("URL", exact=True).fill(receiver.url)
        page.get_by_label("Signing secret").fill("browser-secret")
        page.get_by_label("pull events").check()
        page.get_by_role("button", name="Save endpoint").click()
        expect(page.get_by_role("heading", name="Webhook ci")).to_be_visible()
        time.sleep(SETTINGS_POLL_SECONDS + 1)  # the other worker loads the new endpoint within one poll
        site.push("web/hooked", "1.0")
        for _ in range(600):
            if receiver.pushes():
                break
            time.sleep(0.05)
        assert receiver.pushes() == ["1.0"]
        page = site.go("/settings/webhooks/ci")
        expect(page.get_by_text("web/hooked:1.0")).to_be_visible()
        expect(page.get_by_text("HTTP 204").first).to_be_visible()
        site.shoot("webhook-log")
        site.shoot("webhooks", "/settings/webhooks")
    finally:
        receiver.close()


def test_garbage_collection_policies_and_a_dry_run(site: Site) -> None:
    """The Garbage collection page: a retention policy shows what it would remove; a dry run lands in the history."""
    page = site.go("/admin/gc")
    if "/login" in page.url:
        _log_in(site)
    site.push("gc/app", "1.0")
    site.push("gc/app", "multi", "--all")  # the newer tag
    page = site.go("/admin/gc")
    page.get_by_label("Repositories", exact=True).fill("gc/*")
    page.get_by_label("Keep the newest").fill("1")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#policies")).to_contain_text("gc/*")
    expect(page.locator("#expired")).to_contain_text("gc/app:1.0")
    page.locator("#run-grace").fill("0s")  # the schedule has a grace window too
    page.get_by_role("button", name="Dry run").click()
    for _ in range(100):  # the run goes on in the background; its row appears when it has finished
        page = site.go("/admin/gc")
        if page.locator("#gc-runs").count() and "succeeded" in page.locator("#gc-runs").inner_text():
            break
        time.sleep(0.1)
    expect(page.locator("#gc-runs")).to_contain_text("dry run")
    expect(page.locator("#gc-runs")).to_contain_text("succeeded")
    site.shoot("gc")
    assert sorted(site.clients.list_tags(site.registry.ref("gc/app"))) == ["1.0", "multi"]  # a dry run removes nothing
