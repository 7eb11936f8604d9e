"""Test fixtures: one real local stack per test session, on free ports, in a temporary state folder.

The stack never collides with one a developer is running: ports are picked
free at session start and the state folder is new. Build products come from
the shared cache folder (``PANG_CACHE_DIR``), so only the first run on a
machine pays for the Maven and Go builds. The stack is stopped at the end,
also when tests fail. ``PANG_TEST_OPENSEARCH_URL`` / ``PANG_TEST_S3_ENDPOINT``
point the tests at servers that are already running instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pang.settings import Settings, load_settings
from tests.browser import browser, page  # noqa: F401 - one Chromium for every browser test module
from tests.helpers import stack_overrides


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a running stack: started for this session, or given by PANG_TEST_* variables."""
    from pang import stack

    external_os = os.environ.get("PANG_TEST_OPENSEARCH_URL")
    external_s3 = os.environ.get("PANG_TEST_S3_ENDPOINT")
    if bool(external_os) != bool(external_s3):
        raise pytest.UsageError("set both PANG_TEST_OPENSEARCH_URL and PANG_TEST_S3_ENDPOINT, or neither")
    overrides = stack_overrides(tmp_path_factory.mktemp("stack"))
    if external_os:
        overrides["opensearch_url"] = external_os
    if external_s3:
        overrides["s3_endpoint"] = external_s3
    settings = load_settings(**overrides)
    if external_os:
        from pang.archive.store import ensure_bucket
        from pang.indexer.templates import apply_templates

        apply_templates(settings)  # servers that already run: only what the tests rely on
        ensure_bucket(settings)
        yield settings
        return
    try:
        stack.up(settings)
        yield settings
    finally:
        stack.down(settings)


@pytest.fixture
def unique() -> str:
    """A short random name part, so tests never share indices, buckets or key prefixes."""
    return uuid.uuid4().hex[:10]
