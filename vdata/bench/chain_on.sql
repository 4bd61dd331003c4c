-- `vdata bench`: undo chain_off.sql (the audit hash chain links rows again).

BEGIN;

DROP TRIGGER IF EXISTS trigger_bench_audit_log_unchained ON app.audit_log;
DROP FUNCTION IF EXISTS app.bench_audit_log_unchained();
ALTER TABLE app.audit_log ENABLE TRIGGER trigger_audit_log_chain;
ALTER TABLE app.audit_log ENABLE TRIGGER trigger_audit_log_chain_commit;

COMMIT;
