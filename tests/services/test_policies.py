"""Tag policies: patterns, immutable tags refused with DENIED, and retention (dry run, then applied by a
collection, which frees what the expired tags alone used)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.services.test_gc import APP, NOW, SYSTEM, env, push_image, stored_blobs  # noqa: F401 (env: fixture)
from trustyard.db.index import Index
from trustyard.errors import Denied, InvalidRequest, ManifestUnknown
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName, Tag
from trustyard.services import Services
from trustyard.services.policies import TagPolicy
from trustyard.storage.memory import MemoryDriver


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("team/app", ["team/app"], ["team/app2", "team/app/x"]),
        ("team/*", ["team/app", "team/web"], ["team", "team/app/x", "other/app"]),
        ("team/**", ["team/app", "team/app/x"], ["team", "teams/app"]),
        ("**", ["a", "team/app/x"], []),
        ("*/app", ["team/app", "x/app"], ["team/web"]),
    ],
)
def test_patterns(pattern: str, matches: list[str], misses: list[str]) -> None:
    policy = TagPolicy.parse(pattern)
    assert all(policy.matches(m) for m in matches)
    assert not any(policy.matches(m) for m in misses)


@pytest.mark.parametrize("pattern", ["", "Team/app", "team//app", "team/", "te am"])
def test_bad_patterns_say_how_to_write_one(pattern: str) -> None:
    with pytest.raises(InvalidRequest, match="team/\\* \\(one level\\)"):
        TagPolicy.parse(pattern)


async def test_immutable_tags_cannot_move_or_go(env: tuple[Services, Index, MemoryDriver]) -> None:  # noqa: F811
    services, _index, _driver = env
    first = await push_image(services, "v1", b"one")
    await services.policies.put(SYSTEM, TagPolicy.parse("team/*", immutable=True))
    with pytest.raises(Denied, match=r"tag v1 in team/app is immutable \(tag policy team/\*\)"):
        await push_image(services, "v1", b"two")
    again = await services.manifests.get(SYSTEM, APP, first)
    await services.manifests.put(SYSTEM, APP, Tag.parse("v1"), again.media_type, again.payload)  # a retry: fine
    with pytest.raises(Denied, match="cannot be deleted"):
        await services.manifests.delete(SYSTEM, APP, Tag.parse("v1"))
    with pytest.raises(Denied, match="cannot be deleted"):
        await services.manifests.delete(SYSTEM, APP, first)
    with pytest.raises(ManifestUnknown):  # a tag that does not exist is still just unknown
        await services.manifests.delete(SYSTEM, APP, Tag.parse("nope"))
    await push_image(services, "v2", b"new tags are fine")
    with pytest.raises(Denied, match="cannot be deleted"):  # nor with the whole repository
        await services.repositories.delete(SYSTEM, APP)
    other = RepositoryName.parse("elsewhere/app")
    await push_image(services, "v1", b"other repositories are not covered", repository=other)
    await push_image(services, "v1", b"and can move", repository=other)
    await services.policies.delete(SYSTEM, "team/*")
    await services.manifests.delete(SYSTEM, APP, Tag.parse("v1"))


async def test_retention_dry_run_then_collection(env: tuple[Services, Index, MemoryDriver]) -> None:  # noqa: F811
    services, _index, driver = env
    for n in range(5):
        await push_image(services, f"build-{n}", f"layer {n}".encode())
    await push_image(services, "v1.0", b"release layer")
    everything = ["build-0", "build-1", "build-2", "build-3", "build-4", "v1.0"]
    await services.policies.put(SYSTEM, TagPolicy.parse("team/**", keep_last=2, keep_tags="v*"))
    plan = await services.gc.retention_plan(SYSTEM)
    assert sorted(e.tag for e in plan) == ["build-0", "build-1", "build-2", "build-3"]  # newest two (v1.0 and
    # build-4) and v* stay
    dry = await services.gc.run(SYSTEM, replace(NOW, dry_run=True, untagged=True))
    assert dry.report["tags"] == 4
    assert sorted(await services.tags.list(SYSTEM, APP, None, None)) == everything
    run = await services.gc.run(SYSTEM, replace(NOW, untagged=True))
    assert run.report["tags"] == 4
    assert sorted(await services.tags.list(SYSTEM, APP, None, None)) == ["build-4", "v1.0"]
    assert str(Digest.of(b"layer 0")) not in stored_blobs(driver)  # freed in the same run
    assert str(Digest.of(b"layer 4")) in stored_blobs(driver)


async def test_immutable_repositories_keep_every_tag(env: tuple[Services, Index, MemoryDriver]) -> None:  # noqa: F811
    services, _index, _driver = env
    for n in range(3):
        await push_image(services, f"t{n}", f"layer {n}".encode())
    await services.policies.put(SYSTEM, TagPolicy.parse("**", keep_last=1))
    await services.policies.put(SYSTEM, TagPolicy.parse("team/app", immutable=True))
    assert await services.gc.retention_plan(SYSTEM) == []


async def test_an_immutable_tag_keeps_its_namespace_from_being_deleted_with_it(
    env: tuple[Services, Index, MemoryDriver],  # noqa: F811
) -> None:
    services, _index, _driver = env
    await services.organizations.create(SYSTEM, "team")
    await push_image(services, "v1", b"one")  # team/app:v1
    await push_image(services, "v1", b"two", repository=RepositoryName.parse("team/other"))
    await services.policies.put(SYSTEM, TagPolicy.parse("team/app", immutable=True))
    with pytest.raises(Denied, match=r"tag v1 in team/app is immutable"):
        await services.organizations.delete(SYSTEM, "team", with_repositories=True)
    assert "team" in await services.organizations.all(SYSTEM)  # refused before anything was deleted
    assert await services.tags.list(SYSTEM, RepositoryName.parse("team/other"), None, None) == ["v1"]
    await services.policies.delete(SYSTEM, "team/app")
    await services.organizations.delete(SYSTEM, "team", with_repositories=True)
    assert "team" not in await services.organizations.all(SYSTEM)
