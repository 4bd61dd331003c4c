-- Make a many-row audit write linear instead of quadratic. 0005's chain
-- trigger updated app.audit_log_head once per row, so one transaction writing
-- n rows left n versions of that one row, and each next row's read walked
-- them: 20,000 rows took 10 s, 100,000 about 5 minutes (measured).
--
-- Now each row still takes (or re-takes, which writes nothing) the head's row
-- lock, so writers are serialised exactly as before (READ COMMITTED waits,
-- REPEATABLE READ and SERIALIZABLE get 40001). The running hash within the
-- transaction is kept in transaction-local settings, which PostgreSQL also
-- restores when a savepoint rolls back, and the head row is written once, at
-- commit, by a deferred constraint trigger. A session that forges those
-- settings still takes the lock; it can only write a row whose prev_hash
-- does not match, which verification reports as a broken link.
-- depends: 0302.create-task-status-transitions

CREATE OR REPLACE FUNCTION app.audit_log_chain()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    head_hash bytea;
    this_tx constant text := txid_current()::text;
BEGIN
    SELECT h.last_hash INTO head_hash
    FROM app.audit_log_head AS h
    WHERE h.singleton
    FOR UPDATE;
    IF current_setting('vdata.audit_chain_tx', TRUE) = this_tx THEN
        -- Not the first row of this transaction: link to the previous one.
        head_hash := decode(current_setting('vdata.audit_chain_hash'), 'hex');
    END IF;
    -- Draw the id while holding the head, so id order is chain order.
    NEW.id := nextval('app.audit_log_id_seq'::regclass);
    NEW.prev_hash := head_hash;
    NEW.row_hash := app.audit_log_row_hash(NEW);
    PERFORM set_config('vdata.audit_chain_tx', this_tx, TRUE);
    PERFORM set_config('vdata.audit_chain_hash', encode(NEW.row_hash, 'hex'), TRUE);
    PERFORM set_config('vdata.audit_chain_id', NEW.id::text, TRUE);
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION app.audit_log_chain() IS
'BEFORE INSERT row trigger on audit_log: locks the chain head and links the row
to the previous one (the head, or the transaction''s last row). SECURITY
DEFINER so that the service role needs no access to audit_log_head.';

CREATE FUNCTION app.audit_log_chain_commit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Fires at commit for every row; only the transaction's last row moves
    -- the head, so the head row gets one new version per transaction.
    IF NEW.id = nullif(current_setting('vdata.audit_chain_id', TRUE), '')::bigint THEN
        UPDATE app.audit_log_head AS h
        SET
            last_id = NEW.id,
            last_hash = NEW.row_hash
        WHERE h.singleton;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION app.audit_log_chain_commit() IS
'Deferred AFTER INSERT row trigger on audit_log: at commit, writes the
transaction''s last row to audit_log_head.';

REVOKE EXECUTE ON FUNCTION app.audit_log_chain_commit() FROM public;

CREATE CONSTRAINT TRIGGER trigger_audit_log_chain_commit
AFTER INSERT ON app.audit_log
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION app.audit_log_chain_commit();
