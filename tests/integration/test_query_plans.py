"""History reads use the partial index that keeps message rows out (migration 0001)."""

from __future__ import annotations

import pytest

from pushgod.service.services import Services
from pushgod.store import states


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (states.UPDATES, ("C" * 26, "event", "e1")),
        (states.HISTORY, ("C" * 26, "thing", "t1", 10, 5)),
        (states.HISTORY_SIZE, ("C" * 26, "thing", "t1")),
    ],
)
async def test_history_queries_use_the_entity_index(
    services: Services, sql: str, params: tuple[object, ...]
) -> None:
    rows = services.store.tables.db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    assert "changes_by_entity" in " ".join(str(row[-1]) for row in rows)
