"""``vdata bench`` works end to end: a tiny run writes all four outputs.

Never asserts a ratio or a target: the machine is shared and noisy. It
proves that every contender runs its operations against the same data, that
the extras run, and that the table, JSON, Markdown and PNG are produced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdata.bench import report, suite
from vdata.bench.contenders import CONTENDERS
from vdata.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _tiny(ops: tuple[str, ...]) -> suite.Config:
    return suite.Config(
        ops=ops,
        repeats=1,
        seconds=0.02,
        warmup=0.0,
        users=200,
        bulk_rows=20,
        audit_rows=300,
        tasks=4,
        pool_size=2,
        logins=2,
        login_calls=1,
    )


async def test_a_tiny_run_writes_table_json_markdown_and_png(
    vdata_dsn: str, vdata_app_dsn: str, tmp_path: Path
) -> None:
    ops = ("get_by_id", "update", "api_key_verify", "bulk_insert", *suite.EXTRAS)
    results = await suite.run(_tiny(ops), vdata_dsn, vdata_app_dsn, progress_enabled=False)

    ran = {(c.mode, c.op, c.contender) for c in results.cells}
    expected_contenders = [c for c in CONTENDERS if c not in results.skipped]
    for name in expected_contenders:
        assert ("latency", "get_by_id", name) in ran
        assert ("throughput", "update", name) in ran
        assert ("latency", "bulk_insert", name) in ran
    assert not any(op == "bulk_insert" for mode, op, _ in ran if mode == "throughput")
    assert all(c.ops > 0 and c.wall_s > 0 for c in results.cells)
    assert results.extras.authenticate is not None
    assert results.extras.loop_lag is not None
    assert results.extras.stream_rss is not None
    assert results.extras.stream_rss["rows"] >= 300  # the seeded rows, streamed
    assert results.extras.audit_writes is not None
    assert results.errors == {}

    text, paths = report.write_all(results, tmp_path / "out")
    assert "get_by_id" in text
    assert "target" in text
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    data = json.loads(paths["json"].read_text())
    assert {"results", "summary", "targets"} <= set(data)
    assert data["summary"]["latency"]["get_by_id"]["vdata pool"]["ops_per_s_median"] > 0
    assert all("met" in t for t in data["targets"])
    markdown = paths["markdown"].read_text()
    assert "| mode | operation |" in markdown
    assert "bench.png" in markdown


def test_cli_rejects_an_unknown_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "no_such_op", "--dsn", "postgresql://unused"]) == 2
    assert "unknown operation" in capsys.readouterr().err


def test_cli_exits_2_when_the_dsn_cannot_be_used(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused.
    dsn = "postgresql://postgres@127.0.0.1:1/none"
    assert main(["bench", "--quick", "--only", "get_by_id", "--dsn", dsn]) == 2
    assert "cannot use --dsn" in capsys.readouterr().err
