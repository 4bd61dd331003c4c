-- Drop the audit trail, its partitions, chain head and functions. The row
-- hash function takes the table's row type, so it goes before the table.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-table, ban-drop-function

DROP FUNCTION app.drop_audit_log_partitions(integer);

DROP FUNCTION app.create_audit_log_partitions(integer);

DROP FUNCTION app.audit_log_row_hash(app.audit_log);

DROP TABLE app.audit_log;

DROP FUNCTION app.audit_log_reject_change();

DROP FUNCTION app.audit_log_chain();

DROP TABLE app.audit_log_head;
