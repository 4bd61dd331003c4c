"""The bulk-change and filter-plan measurements run end to end (tiny sizes: proof, not timing)."""

from __future__ import annotations

import pytest

from vdata.bench import bulk, filter_plans

pytestmark = pytest.mark.integration


def test_bulk_measures_every_operation(vdata_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert bulk.main(["--rows", "30", "--repeats", "2", "--dsn", vdata_dsn]) == 0
    out = capsys.readouterr().out
    for name in (
        "tasks.soft_delete_many",
        "tasks.restore_many",
        "tasks.assign_many",
        "tasks.set_status_many",
        "projects.soft_delete_many",
        "projects.restore_many",
        "users.soft_delete_many",
        "users.restore_many",
        "users.revoke_credentials",
    ):
        assert name in out


def test_filter_plans_compares_both_plan_kinds(
    vdata_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--scale", "0.01", "--big", "300", "--runs", "2", "--dsn", vdata_dsn]
    assert filter_plans.main(args) == 0
    out = capsys.readouterr().out
    assert out.count(" custom ") == 5 and out.count(" generic ") == 5
    assert "index_tasks_on_project_id_and_status" in out
