-- Seed audit rows for the streaming measurement of `vdata bench`, as the owner
-- role, on a scratch database only: vdata_bench.audit_rows rows (a session
-- setting, set just before), inserted by one generate_series statement.
--
-- The chain trigger is disabled around the insert and the rows carry
-- placeholder hashes, so verify_chain reports these rows as a broken chain.
-- Why: app.audit_log_chain() updates the one app.audit_log_head row once per
-- inserted row, and within one transaction every update adds a row version
-- that the next lookup walks past, so a multi-row insert is quadratic
-- (measured: 100,000 rows took 328 s on PostgreSQL 18). The streaming
-- measurement needs many rows, not a valid chain.

BEGIN;

ALTER TABLE app.audit_log DISABLE TRIGGER trigger_audit_log_chain;

INSERT INTO app.audit_log (
    actor, action, entity_type, entity_id, after, prev_hash, row_hash
)
SELECT
    'bench' AS actor,
    'bench.seed' AS action,
    'bench' AS entity_type,
    g::text AS entity_id,
    jsonb_build_object('n', g, 'note', 'seeded by vdata bench') AS after,
    sha256(int8send(g - 1)) AS prev_hash,
    sha256(int8send(g)) AS row_hash
FROM generate_series(1, current_setting('vdata_bench.audit_rows')::integer) AS g;

ALTER TABLE app.audit_log ENABLE TRIGGER trigger_audit_log_chain;

COMMIT;
