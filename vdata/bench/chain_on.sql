-- `vdata bench`: undo chain_off.sql (rows are recorded for sealing again).

BEGIN;

DROP TRIGGER IF EXISTS trigger_bench_audit_log_unchained ON app.audit_log;
DROP FUNCTION IF EXISTS app.bench_audit_log_unchained();
ALTER TABLE app.audit_log ENABLE TRIGGER trigger_audit_log_chain;

COMMIT;
