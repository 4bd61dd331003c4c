-- Drop the read-only view of the audit chain head.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-function

DROP FUNCTION app.audit_log_chain_head();
