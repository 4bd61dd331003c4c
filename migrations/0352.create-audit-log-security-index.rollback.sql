-- Drop the partial index of security events.
-- squawk-ignore-file require-concurrent-index-deletion

DROP INDEX app.index_audit_log_on_occurred_at_and_id_security;
