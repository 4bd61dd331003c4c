-- Back to 0005's chain trigger, which updates the head on every row.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-function

DROP TRIGGER trigger_audit_log_chain_commit ON app.audit_log;

DROP FUNCTION app.audit_log_chain_commit();

CREATE OR REPLACE FUNCTION app.audit_log_chain()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    head_hash bytea;
BEGIN
    SELECT h.last_hash INTO head_hash
    FROM app.audit_log_head AS h
    WHERE h.singleton
    FOR UPDATE;
    -- Draw the id while holding the head, so id order is chain order.
    NEW.id := nextval('app.audit_log_id_seq'::regclass);
    NEW.prev_hash := head_hash;
    NEW.row_hash := app.audit_log_row_hash(NEW);
    UPDATE app.audit_log_head AS h
    SET
        last_id = NEW.id,
        last_hash = NEW.row_hash
    WHERE h.singleton;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION app.audit_log_chain() IS
'BEFORE INSERT row trigger on audit_log: links the row into the hash chain.
SECURITY DEFINER so that the service role needs no access to audit_log_head.';
