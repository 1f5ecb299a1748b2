"""Images written straight into a storage driver in Distribution's layout, as another registry (or an earlier
trustyard) left them: what adoption and reindex find. Small: one shared layer, a config and a manifest each."""

from __future__ import annotations

import asyncio
import json

from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName, Tag
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


async def write_images(driver: StorageDriver, count: int, repositories: int = 10, parallel: int = 16) -> None:
    """``count`` tagged images spread over ``repositories`` repositories named ``adopt/r<i>``, tags ``t<j>``."""
    layer = b"a layer every image shares"
    layer_digest = Digest.of(layer)
    await driver.put(layout.blob_data(layer_digest), layer)
    gate = asyncio.Semaphore(parallel)

    async def one(number: int) -> None:
        async with gate:
            repository = RepositoryName.parse(f"adopt/r{number % repositories}")
            config = json.dumps({"architecture": "amd64", "os": "linux", "number": number}).encode()
            config_digest = Digest.of(config)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST_TYPE,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": str(config_digest),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": str(layer_digest),
                            "size": len(layer),
                        }
                    ],
                }
            ).encode()
            digest = Digest.of(manifest)
            tag = Tag.parse(f"t{number}")
            await driver.put(layout.blob_data(config_digest), config)
            await driver.put(layout.blob_data(digest), manifest)
            for blob in (layer_digest, config_digest):
                await driver.put(layout.layer_link(repository, blob), layout.link_body(blob))
            await driver.put(layout.revision_link(repository, digest), layout.link_body(digest))
            await driver.put(layout.tag_index_link(repository, tag, digest), layout.link_body(digest))
            await driver.put(layout.tag_current_link(repository, tag), layout.link_body(digest))

    await asyncio.gather(*(one(n) for n in range(count)))
