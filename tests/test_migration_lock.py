"""Processes that start together on an empty database migrate it one at a time: each of
three concurrent upgrades succeeds, and the database ends at the newest migration."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage.migrate import applied_heads, head_revision, upgrade
from tests.conftest import PG_URL, _reset_postgres


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_upgrades_at_once_on_an_empty_database_all_succeed(backend: str, tmp_path: Path) -> None:
    if backend == "postgresql":
        if not PG_URL:
            pytest.skip("PostgreSQL tests need SIYU_TEST_PG_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
        _reset_postgres(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'siyu.db'}"
    with ThreadPoolExecutor(3) as pool:
        results = [pool.submit(upgrade, url) for _ in range(3)]
        errors = [future.exception() for future in results]
    assert errors == [None, None, None]
    assert applied_heads(url) == {head_revision()}
