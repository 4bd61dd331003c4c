"""Every named query on app.projects or app.tasks sets the acting user of row security.

The policies of migrations/0330 read the transaction-local vdata.user_id; a
statement that reads or writes projects or tasks without setting it acts for
nobody and sees only live public rows. So each such query in sql/ calls
``(SELECT app.act_as(:as_user))`` exactly once, in the same statement, with
the user it acts for (``owner_id`` for a new project).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from vdata.queries import load

_TABLES = re.compile(r"\bapp\.(projects|tasks)\b")
_GATE = re.compile(r"\(SELECT app\.act_as\(\$(\d+)(?:::uuid)?\)\)")
# The acting-user helpers themselves (sql/acting) name the table in a string.
_EXEMPT = {"acting.get_row_security_active", "acting.set_acting_user"}


def _on_projects_or_tasks() -> list[Any]:
    return [q for q in load() if q.name not in _EXEMPT and _TABLES.search(q.sql)]


def test_the_queries_on_projects_and_tasks_are_found() -> None:
    names = {q.name for q in _on_projects_or_tasks()}
    # A sample across files: if none matched, the check below would pass vacuously.
    assert {
        "projects.get_project_by_id",
        "projects.restore_project",
        "tasks.list_tasks_matching",
        "tasks.update_tasks_assignee",
    } <= names


@pytest.mark.parametrize("q", _on_projects_or_tasks(), ids=lambda q: q.name)
def test_each_sets_the_acting_user_once_with_its_user(q: Any) -> None:
    gates = _GATE.findall(q.sql)
    assert len(gates) == 1, f"{q.name}: {len(gates)} app.act_as gates, want 1"
    assert q.sql.count("app.act_as(") == 1
    param = q.params[int(gates[0]) - 1]
    assert param in {"as_user", "owner_id"}, f"{q.name} acts as {param}"
