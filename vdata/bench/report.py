"""Turning a run's cells into summaries, the performance targets, and the outputs.

Ratios are speed ratios, always "higher is better": ops/s of the contender
divided by ops/s of the baseline (asyncpg pool or asyncpg tuned) in the same
repeat, then the median (and min-max) over repeats. In latency mode ops/s is
1 / (mean time per call), so the ratio is also baseline time / contender time.
"""

from __future__ import annotations

__all__ = ["markdown", "summarize", "targets", "text_table", "write_all"]

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec

from vdata.bench import chart
from vdata.bench.runner import Cell
from vdata.bench.suite import Results

POOL, TUNED = "asyncpg pool", "asyncpg tuned"
Summary = dict[str, dict[str, dict[str, dict[str, float]]]]  # mode -> op -> contender -> stat


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _ratio(mine: list[Cell], base: list[Cell]) -> dict[str, float] | None:
    by_repeat = {c.repeat: c for c in base}
    ratios = [
        c.ops_per_s / by_repeat[c.repeat].ops_per_s
        for c in mine
        if c.repeat in by_repeat and by_repeat[c.repeat].ops_per_s > 0
    ]
    return _spread(ratios) if ratios else None


def summarize(results: Results) -> Summary:
    """Return per mode, op and contender: ops/s, µs/op, CPU µs/op and the two ratios."""
    grouped: dict[tuple[str, str, str], list[Cell]] = defaultdict(list)
    for cell in results.cells:
        grouped[(cell.mode, cell.op, cell.contender)].append(cell)
    out: Summary = {}
    for (mode, op, name), cells in grouped.items():
        stats: dict[str, float] = {}
        for key, spread in (
            ("ops_per_s", _spread([c.ops_per_s for c in cells])),
            ("us_per_op", _spread([c.us_per_op for c in cells])),
            ("cpu_us_per_op", _spread([c.cpu_us_per_op for c in cells])),
        ):
            stats.update({f"{key}_{k}": v for k, v in spread.items()})
        for label, base in (("pool", POOL), ("tuned", TUNED)):
            found = _ratio(cells, grouped.get((mode, op, base), []))
            if found is not None:
                stats.update({f"x_{label}_{k}": v for k, v in found.items()})
        out.setdefault(mode, {}).setdefault(op, {})[name] = stats
    return out


def _get(s: Summary, mode: str, op: str, name: str, key: str) -> float | None:
    return s.get(mode, {}).get(op, {}).get(name, {}).get(key)


def _cross(
    results: Results, mode: str, op: str, name: str, base_op: str, base: str
) -> float | None:
    mine = [c for c in results.cells if (c.mode, c.op, c.contender) == (mode, op, name)]
    theirs = [c for c in results.cells if (c.mode, c.op, c.contender) == (mode, base_op, base)]
    found = _ratio(mine, theirs)
    return None if found is None else found["median"]


def targets(results: Results, s: Summary) -> list[dict[str, Any]]:
    """Return every performance target with its measured value and whether it is met."""
    rows: list[dict[str, Any]] = []

    def add(target: str, value: float | None, ok: bool | None, unit: str = "x") -> None:
        rows.append(
            {"target": target, "value": value, "unit": unit, "met": None if value is None else ok}
        )

    for mode in ("latency", "throughput"):
        v = _get(s, mode, "get_by_id", "vdata pool", "x_pool_median")
        add(f"pooled users.get >= 1.0x asyncpg pool ({mode})", v, v is not None and v >= 1.0)
        v = _get(s, mode, "get_by_id", "vdata pool", "x_tuned_median")
        add(f"pooled users.get >= 0.9x asyncpg tuned ({mode})", v, v is not None and v >= 0.9)
    for op in s.get("latency", {}):
        v = _get(s, "latency", op, "vdata tx", "x_tuned_median")
        add(f"tx {op} >= 0.9x asyncpg tuned (held connection)", v, v is not None and v >= 0.9)
        mine = _get(s, "latency", op, "vdata tx", "cpu_us_per_op_median")
        base = _get(s, "latency", op, TUNED, "cpu_us_per_op_median")
        added = None if mine is None or base is None else mine - base
        if op == "bulk_insert":
            # One call of many rows: its CPU difference is reported, but a
            # per-call bound of 10 us does not apply to it.
            rows.append(
                {
                    "target": f"tx {op}: client CPU added per call (one call of many rows)",
                    "value": added,
                    "unit": "us",
                    "met": None,
                    "info": True,
                }
            )
            continue
        add(
            f"tx {op}: client CPU added <= 10 us/call",
            added,
            added is not None and added <= 10.0,
            "us",
        )
    for op in ("get_by_id", "insert", "update"):
        v = _cross(results, "throughput", op, "vdata pool", op, "sqlalchemy")
        add(
            f"pooled {op} >= 5x SQLAlchemy async ORM (pool 10, 64 tasks)",
            v,
            v is not None and v >= 5,
        )
    v = _get(s, "latency", "bulk_insert", "vdata pool", "x_pool_median")
    add("bulk insert >= 0.9x asyncpg, same statements", v, v is not None and v >= 0.9)
    for mode in ("latency", "throughput"):
        v = _cross(results, mode, "api_key_verify", "vdata pool", "get_by_id", POOL)
        add(f"api_keys.verify >= 0.8x raw get by id ({mode})", v, v is not None and v >= 0.8)
    rls = results.extras.row_security
    if rls is not None and rls["row_security_active"]:
        ratios = [st["on_vs_off_cpu"] or st["on_vs_off"] for st in rls["calls"].values()]
        worst = max(ratios)
        add("row security on <= 1.05x off (worst hot call, CPU)", worst, worst <= 1.05)
    lag = results.extras.loop_lag
    v = None if lag is None else lag["busy"]["p99_ms"]
    add("loop lag p99 <= 5 ms while 32 logins hash", v, v is not None and v <= 5.0, "ms")
    rss = results.extras.stream_rss
    v = None if rss is None else rss["rss_growth_mb"]
    label = "streaming audit rows: RSS growth <= 50 MB"
    if rss is not None:
        label += f" ({rss['rows']:,} rows)"
    add(label, v, v is not None and v <= 50.0, "MB")
    return rows


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f} %"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"


def _rows(s: Summary) -> list[list[str]]:
    rows = []
    for mode, ops in s.items():
        for op, contenders in ops.items():
            for name, st in contenders.items():
                rows.append(
                    [
                        mode,
                        op,
                        name,
                        f"{_rate(st['ops_per_s_median'])} "
                        f"({_rate(st['ops_per_s_min'])}-{_rate(st['ops_per_s_max'])})",
                        _fmt(st["us_per_op_median"], 0),
                        _fmt(st["cpu_us_per_op_median"], 1),
                        _fmt(st.get("x_pool_median")),
                        _fmt(st.get("x_tuned_median")),
                    ]
                )
    return rows


_HEAD = [
    "mode",
    "operation",
    "contender",
    "ops/s median (min-max)",
    "µs/op",
    "CPU µs/op",
    "x asyncpg pool",
    "x asyncpg tuned",
]


def _target_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for t in rows:
        met = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        if t.get("info"):
            met = "for information"
        unit = t["unit"]
        value = "—" if t["value"] is None else f"{t['value']:.2f}{'' if unit == 'x' else ' '}{unit}"
        out.append([t["target"], value, met])
    return out


def text_table(head: list[str], rows: list[list[str]]) -> str:
    """Return *rows* as a plain aligned table."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]

    def line(r: list[str]) -> str:
        return "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=False)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def _md(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _extras_lines(results: Results) -> list[str]:
    e = results.extras
    lines = []
    if e.authenticate:
        for name, st in e.authenticate.items():
            lines.append(
                f"authenticate ({name}, default argon2id): {st['ms_per_op']:.1f} ms "
                f"({st['min_ms']:.1f}-{st['max_ms']:.1f}), CPU {st['cpu_ms_per_op']:.1f} ms"
            )
    if e.loop_lag:
        b, i = e.loop_lag["busy"], e.loop_lag["idle"]
        lines.append(
            f"loop lag while {e.loop_lag['logins']} logins hash ({e.loop_lag['seconds']:.1f} s): "
            f"p50 {b['p50_ms']:.2f} ms, p99 {b['p99_ms']:.2f} ms, max {b['max_ms']:.1f} ms "
            f"(idle: p50 {i['p50_ms']:.2f}, p99 {i['p99_ms']:.2f} ms)"
        )
    if e.stream_rss:
        r = e.stream_rss
        lines.append(
            f"streaming {r['rows']:,} audit rows: {r['rows_per_s']:,.0f} rows/s, "
            f"{r['cpu_us_per_row']:.1f} µs CPU/row, peak RSS growth {r['rss_growth_mb']:.1f} MB "
            f"(from {r['rss_base_mb']:.0f} MB)"
        )
    if e.audit_writes:
        a = e.audit_writes
        for chain in ("on", "off"):
            for mode, st in a.get(chain, {}).items():
                lines.append(
                    f"audit writes, chain {chain} ({mode}): {st['writes_per_s']:,.0f}/s "
                    f"({st.get('min', st['writes_per_s']):,.0f}-"
                    f"{st.get('max', st['writes_per_s']):,.0f}), "
                    f"CPU {st['cpu_us_per_op']:.0f} us/write"
                    + (
                        ""
                        if st.get("server_cpu_us_per_op") is None
                        else f", server CPU {st['server_cpu_us_per_op']:.0f} us/write"
                    )
                )
        for mode, st in a.get("ratio", {}).items():
            lines.append(
                f"audit writes, chain on / off ({mode}): {st['median']:.2f}x "
                f"({st['min']:.2f}-{st['max']:.2f}, {a.get('repeats', 1)} interleaved repeats, "
                f"sealer every {a.get('seal_every_s') or 0:g} s while chain on)"
            )
    if e.hooks:
        off = e.hooks["variants"]["off"]
        lines.append(
            f"statement listeners, {e.hooks['op']}: off {off['us_per_op']:.1f} us/call "
            f"(CPU {off['cpu_us_per_op']:.1f} us); the no-listener test "
            f"{e.hooks['guard_ns']:.1f} ns/call; best repeat: "
            + ", ".join(f"{n} {v['min_us']:.1f} us" for n, v in e.hooks["variants"].items())
        )
        if "OpenTelemetry" in e.hooks["emit_ns"]:
            lines.append(
                "statement listeners, the event alone through the OpenTelemetry listener "
                f"(a span and a histogram point, nothing exported): "
                f"{e.hooks['emit_ns']['OpenTelemetry']:.0f} ns"
            )
        for name, st in e.hooks["variants"].items():
            if name == "off":
                continue
            lines.append(
                f"statement listeners, {name} vs off: {st['delta_us']:+.2f} us/call "
                f"({st['delta_us_min']:+.2f} to {st['delta_us_max']:+.2f}), "
                f"CPU {st['delta_cpu_us']:+.2f} us/call; the event alone "
                f"{e.hooks['emit_ns'][name]:.0f} ns"
            )
    if e.row_security and not e.row_security["row_security_active"]:
        lines.append("row security: not measured (the contenders connect as the tables' owner)")
    elif e.row_security:
        for call, st in e.row_security["calls"].items():
            us, cpu = st["us"], st["cpu_us"]
            line = (
                f"row security, {call}: wall on {us['on']:.0f} us, off {us['off']:.0f} us "
                f"({_pct(st['on_vs_off'])}), in its own transaction {us['tx']:.0f} us "
                f"({_pct(st['tx_vs_off'])})"
            )
            if st["on_vs_off_cpu"] is not None:
                line += (
                    f"; CPU on {cpu['on']:.0f} us, off {cpu['off']:.0f} us "
                    f"({_pct(st['on_vs_off_cpu'])}), own transaction {cpu['tx']:.0f} us "
                    f"({_pct(st['tx_vs_off_cpu'])})"
                )
            lines.append(line)
        for call, st in e.row_security["server"].items():
            us = st["us"]
            lines.append(
                f"row security, {call}, server execution: on {us['on']:.1f} us, "
                f"off {us['off']:.1f} us ({us['on'] - us['off']:+.1f} us, {_pct(st['on_vs_off'])})"
            )
        g = e.row_security["gate"]
        line = (
            "row security, the in-statement acting user (SELECT app.act_as($1)): wall "
            f"{g['us']['gate'] - g['us']['no_gate']:+.1f} us per statement"
        )
        if g["gate_vs_no_gate_cpu"] is not None:
            line += f", CPU {g['cpu_us']['gate'] - g['cpu_us']['no_gate']:+.1f} us"
        lines.append(line)
    for name, why in results.skipped.items():
        lines.append(f"skipped {name}: {why}")
    for name, why in results.errors.items():
        lines.append(f"FAILED {name}: {why}")
    return lines


def markdown(results: Results, s: Summary, goals: list[dict[str, Any]], chart: str | None) -> str:
    """Return the run as Markdown: machine, chart, targets, table, extras."""
    m = results.machine
    parts = [
        f"Run {results.started} ({'quick' if results.config.quick else 'full'}, "
        f"{results.config.repeats} interleaved repeats, {results.seconds:.0f} s).",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['platform']}; Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, asyncpg {m['asyncpg']}, SQLAlchemy {m['sqlalchemy']}, "
        f"msgspec {m['msgspec']}.",
        "",
    ]
    parts += [
        "Ratios are speed ratios, higher is better: ops/s of the contender divided by ops/s "
        "of the baseline (asyncpg pool, or asyncpg tuned) in the same repeat, median over "
        "repeats (min-max in the JSON). Latency mode: one connection, sequential awaits, so "
        "ops/s = 1 / mean time per call. Throughput mode: a pool of "
        f"{results.config.pool_size}, {results.config.tasks} concurrent tasks. CPU is this "
        "process's CPU time (time.process_time) per call; the server is another process. "
        f"bulk_insert is one call of {results.config.bulk_rows:,} rows, latency mode only.",
        "",
    ]
    if chart:
        parts += [f"![ratio to asyncpg pool per operation]({chart})", ""]
    parts += ["### Targets", "", _md(["target", "measured", ""], _target_rows(goals)), ""]
    parts += ["### Operations", "", _md(_HEAD, _rows(s)), ""]
    parts += ["### Also measured", "", *[f"- {x}" for x in _extras_lines(results)], ""]
    return "\n".join(parts)


def write_all(results: Results, out: Path) -> tuple[str, dict[str, Path], str | None]:
    """Write JSON and Markdown into *out*, then the PNG chart if matplotlib is there.

    Return the terminal text, the paths written, and why the chart was
    skipped (None if it was drawn). The data is on disk before the chart is
    drawn, so a failure there loses nothing.
    """
    out.mkdir(parents=True, exist_ok=True)
    s = summarize(results)
    goals = targets(results, s)
    paths = {"json": out / "bench.json", "markdown": out / "bench.md"}
    png = out / "bench.png"
    paths["json"].write_bytes(
        msgspec.json.format(
            msgspec.json.encode({"results": results, "summary": s, "targets": goals}),
            indent=2,
        )
    )
    skipped = chart.unavailable()
    if skipped is None and not s:
        skipped = "no operation ran (only extras), so there is no chart to draw"
    picture = None if skipped else png.name
    paths["markdown"].write_text(markdown(results, s, goals, picture), encoding="utf-8")
    if skipped is None:
        chart.chart(s, png, machine=results.machine, started=results.started, config=results.config)
        paths["png"] = png
    text = "\n\n".join(
        [
            text_table(_HEAD, _rows(s)),
            text_table(["target", "measured", ""], _target_rows(goals)),
            "\n".join(_extras_lines(results)),
        ]
    )
    return text, paths, skipped
