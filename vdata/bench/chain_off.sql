-- `vdata bench`, scratch database only, as the owner role: switch the audit
-- chain off to measure what it costs. Rows are still hashed (the same
-- app.audit_log_row_hash) but carry no transaction id, so no seal will ever
-- list them, and the bench runs no sealer meanwhile. chain_on.sql switches
-- it back; verify_chain reports the rows written meanwhile as written with
-- the chain trigger bypassed.

BEGIN;

CREATE FUNCTION app.bench_audit_log_unchained()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- The id is the chain trigger's to draw (the column has no default).
    NEW.id := nextval('app.audit_log_id_seq'::regclass);
    NEW.row_hash := app.audit_log_row_hash(NEW);
    RETURN NEW;
END;
$$;

ALTER TABLE app.audit_log DISABLE TRIGGER trigger_audit_log_chain;

CREATE TRIGGER trigger_bench_audit_log_unchained
BEFORE INSERT ON app.audit_log
FOR EACH ROW EXECUTE FUNCTION app.bench_audit_log_unchained();

COMMIT;
