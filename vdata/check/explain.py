"""``vdata explain``: the plan of every named query, and seq scans on growing tables.

Plans are generic (what a prepared statement gets once the plan cache goes
generic, independent of parameter values): ``EXPLAIN (GENERIC_PLAN)`` on
PostgreSQL 16+, ``PREPARE`` + ``plan_cache_mode = force_generic_plan`` +
``EXPLAIN EXECUTE`` with NULL arguments before. With ``analyze=True`` each
query runs (``EXPLAIN ANALYZE``, inside a transaction that is rolled back)
with parameter values sampled from the data (see ``vdata.check.samples``),
typically after :func:`seed` filled the tables with realistic volumes.

A sequential scan on a table meant to grow (``GROWING``, partitions
included) is flagged, unless the query's doc comment explains it with a
line ``-- seqscan-ok: <why>`` (a maintenance job that reads everything).
"""

from __future__ import annotations

__all__ = ["GROWING", "QueryPlan", "explain", "format_plans", "seed"]

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from vdata.check.files import shown
from vdata.check.samples import sample_values
from vdata.check.sources import Sources
from vdata.dsn import parse_dsn
from vdata.queries import Query, load_queries

#: Tables in schema ``app`` whose size grows with use; a seq scan there is a
#: latency bug waiting for data.
GROWING = ("api_keys", "audit_log", "projects", "sessions", "tasks", "users")

_ALLOWED = re.compile(r"^seqscan-ok\s*:\s*(.*)$", re.IGNORECASE)
_STATEMENT = "vdata_explain"
_SEED = Path(__file__).with_name("explain_seed.sql")


class QueryPlan(msgspec.Struct, kw_only=True):
    """One query's plan, and the growing tables it reads sequentially."""

    name: str
    path: str
    line: int
    generic: bool
    plan: dict[str, Any] | None = None
    seq_scans: list[str] = msgspec.field(default_factory=list)
    allowed: str | None = None  # the seqscan-ok note, if the query has one
    params: dict[str, str | None] = msgspec.field(default_factory=dict)
    error: str | None = None
    note: str | None = None  # why an --analyze plan is generic after all

    @property
    def flagged(self) -> bool:
        """Return True if it seq-scans a growing table without a note saying why."""
        return bool(self.seq_scans) and self.allowed is None


def seed(dsn: str, *, scale: float = 1.0) -> dict[str, int]:
    """Fill the growing tables of *dsn* (owner, migrated) from ``_explain_seed.sql``.

    Scale 1.0 is 100k users and 1M audit rows; return the row count per table.
    """
    import psycopg

    with psycopg.connect(parse_dsn(dsn).conninfo()) as conn:
        conn.execute("SELECT set_config('vdata.seed_scale', %s, true)", (str(scale),))
        conn.execute(_SEED.read_text(encoding="utf-8").encode())
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
        counts = {}
        for table in GROWING:
            row = conn.execute(f"SELECT count(*) FROM app.{table}").fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def _growing_relations(conn: Any) -> dict[str, str]:
    """Return the growing tables and their partitions, each mapped to its table.

    Partitions that ANALYZE found empty (next months' audit_log) are left out:
    the planner rightly scans an empty table, and uses the index once it fills.
    """
    names: dict[str, str] = {table: table for table in GROWING}  # a plain table has no tree
    for table in GROWING:
        rows = conn.execute(
            "SELECT c.relname FROM pg_partition_tree(to_regclass(%s)) AS t "
            "JOIN pg_catalog.pg_class AS c ON c.oid = t.relid "
            "WHERE t.level = 0 OR c.reltuples <> 0",
            (f"app.{table}",),
        ).fetchall()
        names.update((str(r[0]), table) for r in rows)
    return names


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _exec(conn: Any, sql: str) -> Any:
    """Run *sql* through the simple query protocol (``$n`` stay unbound); return the result."""
    import psycopg

    result = conn.pgconn.exec_(sql.encode())
    if result.status not in (psycopg.pq.ExecStatus.COMMAND_OK, psycopg.pq.ExecStatus.TUPLES_OK):
        message = result.get_error_message()
        if isinstance(message, bytes):
            message = message.decode(errors="replace")
        raise RuntimeError(str(message).strip())
    return result


def _plan_of(
    conn: Any, q: Query[Any], analyze: bool
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Return the JSON plan of *q* and the parameter values it ran with."""
    from psycopg import sql

    if not analyze and conn.info.server_version >= 160000:
        result = _exec(conn, f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {q.sql}")
        return dict(json.loads(result.get_value(0, 0))[0]), {}
    _exec(conn, "BEGIN")
    try:
        _exec(conn, f"PREPARE {_STATEMENT} AS {q.sql}")
        values: dict[str, str | None] = {}
        args: list[sql.Composable]
        if analyze:
            row = conn.execute(
                "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s",
                (_STATEMENT,),
            ).fetchone()
            types = list(row[0]) if row and row[0] else []
            values = sample_values(conn, q, types)
            # EXPLAIN is a utility statement and takes no bind parameters:
            # the values go in as literals, each cast to its parameter's type.
            args = [
                sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(t))  # type from the catalog
                for v, t in zip(values.values(), types, strict=False)
            ]
            options = "ANALYZE, BUFFERS, FORMAT JSON"
        else:
            _exec(conn, "SET LOCAL plan_cache_mode = force_generic_plan")
            args = [sql.SQL("NULL") for _ in q.params]
            options = "FORMAT JSON"
        statement = sql.SQL("EXPLAIN ({}) EXECUTE {}").format(
            sql.SQL(options), sql.Identifier(_STATEMENT)
        )
        if args:
            statement = sql.SQL("{}({})").format(statement, sql.SQL(", ").join(args))
        result = _exec(conn, statement.as_string(conn))
        plan = result.get_value(0, 0)
        return dict(json.loads(plan)[0]), values
    finally:
        # ROLLBACK also undoes whatever EXPLAIN ANALYZE wrote; PREPARE is not
        # transactional, so a statement that was prepared is deallocated by hand.
        _exec(conn, "ROLLBACK")
        left = _exec(conn, f"SELECT FROM pg_prepared_statements WHERE name = '{_STATEMENT}'")
        if left.ntuples:
            _exec(conn, f"DEALLOCATE {_STATEMENT}")


def explain(
    dsn: str,
    names: Sequence[str] = (),
    *,
    analyze: bool = False,
    sources: Sources | None = None,
) -> list[QueryPlan]:
    """Return the plan of every named query of *sources* (or only *names*) on *dsn*.

    *sources* default to vdata's own ``sql/``. A name matches
    ``<folder>.<name>`` or the bare ``<name>``; raise KeyError for a name
    that matches nothing, ValueError (naming it) for a folder that does not
    load. A query that cannot be planned gets ``error`` set instead of a plan.
    """
    import psycopg

    sources = sources or Sources()
    queries: list[Query[Any]] = []
    for root in sources.roots:
        try:
            queries += load_queries(root)
        except Exception as exc:  # aiosql's own message names the block
            raise ValueError(f"{root} does not load: {exc} (vdata check says more)") from exc
    if names:
        wanted = set(names)
        chosen = [q for q in queries if q.name in wanted or q.name.split(".")[-1] in wanted]
        found = {q.name for q in chosen} | {q.name.split(".")[-1] for q in chosen}
        missing = sorted(wanted - found)
        if missing:
            raise KeyError(f"no query named {', '.join(missing)}")
        queries = chosen
    plans = []
    conninfo = parse_dsn(dsn).conninfo()  # any form libpq reads, +driver too
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        growing = _growing_relations(conn)
        for q in queries:
            notes = [m.group(1) for m in map(_ALLOWED.match, q.doc.splitlines()) if m]
            qp = QueryPlan(
                name=q.name,
                path=shown(Path(q.path)),
                line=q.line,
                generic=not analyze,
                allowed=notes[0] if notes else None,
            )
            try:
                qp.plan, qp.params = _plan_of(conn, q, analyze)
            except (psycopg.Error, RuntimeError) as exc:
                qp.error = str(exc).strip().splitlines()[0]
            if qp.error and analyze:
                # A write whose sampled values break a constraint (an existing
                # username, a missing row) cannot run; its generic plan still
                # shows which access paths it takes.
                qp.note, qp.error, qp.generic = f"not run ({qp.error})", None, True
                try:
                    qp.plan, _ = _plan_of(conn, q, False)
                except (psycopg.Error, RuntimeError) as exc:
                    qp.error = str(exc).strip().splitlines()[0]
            if qp.error or qp.plan is None:
                plans.append(qp)
                continue
            scans = {
                growing[str(n["Relation Name"])]
                for n in _nodes(qp.plan.get("Plan", {}))
                if n.get("Node Type") == "Seq Scan" and n.get("Relation Name") in growing
            }
            qp.seq_scans = sorted(scans)
            plans.append(qp)
    return plans


def _node_text(node: dict[str, Any]) -> str:
    text = str(node.get("Node Type", "?"))
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        text += f" on {node['Relation Name']}"
        if node.get("Alias") and node["Alias"] != node["Relation Name"]:
            text += f" {node['Alias']}"
    cost = f"{node.get('Startup Cost')}..{node.get('Total Cost')}"
    text += f"  (cost={cost} rows={node.get('Plan Rows')})"
    if "Actual Total Time" in node:
        text += (
            f" (actual {node['Actual Total Time']:.3f} ms rows={node.get('Actual Rows')}"
            f" loops={node.get('Actual Loops')})"
        )
    for key in ("Index Cond", "Filter", "Hash Cond", "Recheck Cond"):
        if node.get(key):
            text += f"\n      {key}: {node[key]}"
    return text


def format_plans(plans: Sequence[QueryPlan], *, cwd: Path | None = None) -> str:
    """Return the plans as indented trees with a flag under each offending query."""
    out: list[str] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        out.append("    " + "  " * depth + _node_text(node).replace("\n", "\n" + "  " * depth))
        for child in node.get("Plans", ()):
            walk(child, depth + 1)

    for qp in plans:
        out.append(f"{qp.name}  ({qp.path}:{qp.line}){'' if qp.generic else ' ANALYZE'}")
        if qp.params:
            out.append("    with " + ", ".join(f":{k}={v!r}" for k, v in qp.params.items()))
        if qp.note:
            out.append(f"    {qp.note}; generic plan shown")
        if qp.error:
            out.append(f"    ERROR: {qp.error}")
        elif qp.plan:
            walk(qp.plan.get("Plan", {}), 0)
            if "Execution Time" in qp.plan:
                out.append(f"    execution {qp.plan['Execution Time']:.3f} ms")
        for rel in qp.seq_scans:
            if qp.allowed is None:
                out.append(f"    !! Seq Scan on growing table app.{rel}")
            else:
                out.append(f"    (seq scan on app.{rel} allowed: {qp.allowed})")
        out.append("")
    flagged = [qp for qp in plans if qp.flagged]
    errors = [qp for qp in plans if qp.error]
    for qp in flagged:
        tables = ", ".join(f"app.{t}" for t in qp.seq_scans)
        out.append(f"  {qp.path}:{qp.line}: {qp.name} seq-scans {tables}")
    for qp in errors:
        out.append(f"  {qp.path}:{qp.line}: {qp.name} could not be planned: {qp.error}")
    out.append(
        f"vdata explain: {len(plans)} queries; {len(flagged)} seq-scan a growing table "
        f"without a seqscan-ok note; {len(errors)} could not be planned"
    )
    return "\n".join(out)
