"""``vdata bench`` works end to end: a tiny run writes its outputs.

Never asserts a ratio or a target: the machine is shared and noisy. It
proves that every contender runs its operations against the same data, that
the extras run, and that the table, JSON and Markdown are written before the
PNG chart is drawn (which needs the ``bench`` extra's matplotlib).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vdata.bench import chart, report, suite
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


@pytest.fixture(scope="module")
def tiny_results(vdata_template_dsn: str, vdata_server: Any) -> suite.Results:
    """One tiny run, on a clone of its own, shared by this module's tests."""
    import asyncio

    import psycopg

    from vdata.testing.admin import dbname

    name = "vdata_bench_tiny"
    with psycopg.connect(vdata_server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {dbname(vdata_template_dsn)}")
    ops = ("get_by_id", "update", "api_key_verify", "bulk_insert", *suite.EXTRAS)
    try:
        return asyncio.run(
            suite.run(
                _tiny(ops),
                vdata_server.dsn(name),
                vdata_server.dsn(name, user="vdata_app"),
                progress_enabled=False,
            )
        )
    finally:
        with psycopg.connect(vdata_server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def have_otel_sdk() -> bool:
    try:
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_tiny_run_writes_table_json_and_markdown(
    tiny_results: suite.Results, tmp_path: Path
) -> None:
    results = tiny_results

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
    writes = results.extras.audit_writes
    assert writes is not None
    assert set(writes["ratio"]) == {"latency", "throughput"}
    for mode in ("latency", "throughput"):
        assert writes["ratio"][mode]["median"] > 0
        for run in writes["on"][mode]["runs"]:  # the sealer ran, every write got sealed
            assert run["seals"] >= 1 and run["rows_sealed"] >= run["writes"] > 0
        for run in writes["off"][mode]["runs"]:  # chain off: no sealer
            assert (run["seals"], run["rows_sealed"]) == (0, 0)
    hooks = results.extras.hooks
    assert hooks is not None and set(hooks["variants"]) == {"off", "noop listener", "QueryStats"}
    assert all(v["calls"] > 0 for v in hooks["variants"].values())
    # QueryStats counted its own cells' calls and its warm-up's (at least one batch).
    assert hooks["stats_calls_seen"] >= hooks["variants"]["QueryStats"]["calls"] + 10
    assert hooks["guard_ns"] >= 0
    assert {"noop listener", "QueryStats"} <= set(hooks["emit_ns"])
    # The OpenTelemetry listener is timed where the otel extra is installed.
    assert ("OpenTelemetry" in hooks["emit_ns"]) == have_otel_sdk()
    assert results.errors == {}

    text, paths, no_chart = report.write_all(results, tmp_path / "out")
    assert "get_by_id" in text
    assert "target" in text
    data = json.loads(paths["json"].read_text())
    assert {"results", "summary", "targets"} <= set(data)
    assert data["summary"]["latency"]["get_by_id"]["vdata pool"]["ops_per_s_median"] > 0
    assert all("met" in t for t in data["targets"])
    markdown = paths["markdown"].read_text()
    assert "| mode | operation |" in markdown
    assert "audit writes, chain on / off (throughput)" in markdown
    if no_chart is None:  # matplotlib here: the chart is drawn and linked
        assert paths["png"].read_bytes().startswith(b"\x89PNG")
        assert "bench.png" in markdown
    else:  # without the bench extra: no chart, and the reason names the extra
        assert "vdata-pg[bench]" in no_chart
        assert "png" not in paths and "bench.png" not in markdown


def test_the_data_is_written_before_the_chart_is_drawn(
    tiny_results: suite.Results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_chart(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the chart failed")

    monkeypatch.setattr(chart, "unavailable", lambda: None)
    monkeypatch.setattr(chart, "chart", broken_chart)
    with pytest.raises(RuntimeError, match="the chart failed"):
        report.write_all(tiny_results, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "bench.json").read_text())["summary"]
    assert "| mode | operation |" in (tmp_path / "out" / "bench.md").read_text()


def test_without_matplotlib_the_chart_is_skipped_naming_the_extra(
    tiny_results: suite.Results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    _text, paths, no_chart = report.write_all(tiny_results, tmp_path / "out")
    assert no_chart is not None and "pip install 'vdata-pg[bench]'" in no_chart
    assert set(paths) == {"json", "markdown"}
    assert not (tmp_path / "out" / "bench.png").exists()


def test_the_chart_shows_spread_machine_and_no_baseline_bar(
    tiny_results: suite.Results, tmp_path: Path
) -> None:
    pytest.importorskip(
        "matplotlib", reason="the chart needs the bench extra: pip install 'vdata-pg[bench]'"
    )
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    drawn: list[Any] = []
    real_savefig = Figure.savefig

    def keep(fig: Any, *args: Any, **kwargs: Any) -> None:
        drawn.append(fig)
        real_savefig(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", keep)
        mp.setattr(plt, "close", lambda fig: None)
        _text, paths, no_chart = report.write_all(tiny_results, tmp_path / "out")
    assert no_chart is None and paths["png"].read_bytes().startswith(b"\x89PNG")
    (fig,) = drawn
    axes = fig.axes
    assert len(axes) == 2 and axes[0].get_ylim() == axes[1].get_ylim()  # one y-scale
    for ax in axes:
        bars = [c for c in ax.containers if not hasattr(c, "has_yerr")]
        whiskers = [c for c in ax.containers if getattr(c, "has_yerr", False)]
        assert bars and len(whiskers) == len(bars)  # min-max error bars on every series
        labels = [c.get_label() for c in bars]
        assert "asyncpg pool" not in labels  # the baseline is the 1.0 line, not a bar
        assert labels[:3] == ["vdata pool", "vdata tx", "asyncpg tuned"]  # side by side
    title = fig._suptitle.get_text()
    assert "PostgreSQL" in title and tiny_results.started in title
    assert str(tiny_results.machine["postgresql"]) in title


def test_cli_rejects_an_unknown_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "no_such_op", "--dsn", "postgresql://unused"]) == 2
    assert "unknown operation" in capsys.readouterr().err
