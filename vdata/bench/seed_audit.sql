-- Seed audit rows for the streaming measurement of `vdata bench`, as the owner
-- role on a scratch database: vdata_bench.audit_rows rows (a session setting,
-- set just before), inserted by one generate_series statement. The chain
-- trigger hashes every row as for any other write, and the next seal
-- (db.audit.seal()) lists them, so verify_chain holds afterwards.

INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after)
SELECT
    'bench' AS actor,
    'bench.seed' AS action,
    'bench' AS entity_type,
    g::text AS entity_id,
    jsonb_build_object('n', g, 'note', 'seeded by vdata bench') AS after
FROM generate_series(1, current_setting('vdata_bench.audit_rows')::integer) AS g;
