"""Fixtures the integration tests share."""

from __future__ import annotations

import pytest

from topics.admin import TopicAdmin
from topics.catalog import TopicCatalog


@pytest.fixture
async def catalog(bootstrap_servers: str, topic_prefix: str) -> TopicCatalog:
    """The topics of this test's prefix, created."""
    catalog = TopicCatalog(prefix=topic_prefix)
    async with TopicAdmin({"bootstrap_servers": bootstrap_servers}) as admin:
        await admin.ensure(catalog.specs())
    return catalog
