-- Security reviews list failed and refused activity (failed logins,
-- lockouts, refused API keys) over a time range, newest first. Those events
-- are a small part of the trail, so a partial index holding only them lets
-- audit.list_security_events read just its rows in order, in every month
-- (each partition gets its part of the index). The query repeats this
-- predicate word for word, which is what lets the planner use the index.
--
-- Not CONCURRENTLY: PostgreSQL cannot build an index on a partitioned table
-- concurrently (see 0304 for building one by hand on a large table first,
-- partition by partition; IF NOT EXISTS then lets this migration go past it).
-- depends: 0351.create-api-key-usage-days

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS index_audit_log_on_occurred_at_and_id_security
ON app.audit_log (occurred_at, id)
WHERE action IN ('user.login_failed', 'user.lock', 'api_key.refuse');
