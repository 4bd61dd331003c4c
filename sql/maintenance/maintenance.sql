-- Cleanup's coordination: one run at a time across every instance, and the
-- audit partitions past retention.

-- name: try_cleanup_lock()$
-- not-null: pg_try_advisory_xact_lock
-- Take the cleanup's transaction-level advisory lock if no other session
-- holds it; return whether it was taken. Released at commit or rollback.
-- The key is a fixed number (the bytes of 'vdclean'), the same everywhere.
SELECT pg_try_advisory_xact_lock(33324425434980718);

-- name: list_expired_audit_partitions(keep_months)
-- not-null: partition_name
-- Return the monthly audit partitions older than the last keep_months months
-- (counting this one), oldest first: what app.drop_audit_log_partitions
-- would drop. Reads the catalog only, so any role may ask.
WITH cutoff AS (
    SELECT
        date_trunc('month', now() AT TIME ZONE 'UTC')
        - make_interval(months => :keep_months::integer) AS month_start
)

SELECT c.relname::text AS partition_name
FROM pg_catalog.pg_inherits AS i
INNER JOIN pg_catalog.pg_class AS c ON i.inhrelid = c.oid
WHERE
    i.inhparent = 'app.audit_log'::regclass
    AND c.relname ~ '^audit_log_y[0-9]{4}m[0-9]{2}$'
    AND to_date(substr(c.relname, 12), 'YYYY"m"MM') < (SELECT co.month_start FROM cutoff AS co)
ORDER BY c.relname;
