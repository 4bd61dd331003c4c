-- Back to one chain linked by the writers (0303's trigger and its deferred
-- head update). The seals and the sealer go. Rows written meanwhile carry no
-- prev_hash: the head moves to the newest row, so writers link to it again,
-- and verifying with from_id at the first row written after this rollback
-- checks everything linked from then on; verification across the sealed rows
-- reports a broken link at the first of them.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-table, ban-drop-function, ban-drop-column
-- squawk-ignore-file require-concurrent-index-deletion

LOCK TABLE app.audit_log IN SHARE ROW EXCLUSIVE MODE;

UPDATE app.audit_log_head AS h
SET
    last_id = newest.id,
    last_hash = newest.row_hash
FROM (
    SELECT
        a.id,
        a.row_hash
    FROM app.audit_log AS a
    ORDER BY a.id DESC
    LIMIT 1
) AS newest
WHERE h.singleton AND newest.id > coalesce(h.last_id, 0);

CREATE OR REPLACE FUNCTION app.grant_service_role(role_name name)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    -- Tables the service may read and append to, but never change.
    append_only constant name[] := ARRAY['audit_log']::name[];
    -- Tables only the owner's SECURITY DEFINER functions touch.
    owner_only constant name[] := ARRAY['audit_log_head']::name[];
    -- Tables the service may read, never change.
    read_only constant name[] := ARRAY['signing_keys']::name[];
    target regclass;
    target_name name;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
        RAISE NOTICE 'role % does not exist: no privileges granted', role_name;
        RETURN FALSE;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA app TO %I', role_name);
    -- Partitions are skipped: the service reaches them through their parent.
    FOR target, target_name IN
        SELECT c.oid::regclass, c.relname
        FROM pg_catalog.pg_class AS c
        WHERE
            c.relnamespace = 'app'::regnamespace
            AND c.relkind IN ('r', 'p')
            AND NOT c.relispartition
        ORDER BY c.relname
    LOOP
        EXECUTE format('REVOKE TRUNCATE, REFERENCES, TRIGGER ON %s FROM %I', target, role_name);
        IF target_name = ANY(owner_only) THEN
            EXECUTE format('REVOKE ALL ON %s FROM %I', target, role_name);
        ELSIF target_name = ANY(read_only) THEN
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %s FROM %I', target, role_name);
            EXECUTE format('GRANT SELECT ON %s TO %I', target, role_name);
        ELSIF target_name = ANY(append_only) THEN
            EXECUTE format('REVOKE UPDATE, DELETE ON %s FROM %I', target, role_name);
            EXECUTE format('GRANT SELECT, INSERT ON %s TO %I', target, role_name);
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', target, role_name);
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA app TO %I', role_name);
    RETURN TRUE;
END;
$$;

COMMENT ON FUNCTION app.grant_service_role(name) IS
'Grant the service role exactly the DML it needs on every app table (SELECT only on
signing_keys, SELECT and INSERT only on append-only tables; never TRUNCATE, REFERENCES, TRIGGER or DDL).
Idempotent. Returns false, changing nothing, when the role does not exist.
Run by `vdata migrate --app-role NAME` after every migration run.';

DROP FUNCTION app.audit_log_seal_head();

DROP FUNCTION app.seal_audit_log();

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

COMMENT ON TABLE app.audit_log_head IS
'Last id and row_hash of the audit chain. Owner-only; written by app.audit_log_chain().';

ALTER TABLE app.audit_log_head DROP COLUMN last_seal_hash;

ALTER TABLE app.audit_log_head DROP COLUMN last_seal_id;

DROP TRIGGER trigger_audit_log_seal_reject_change ON app.audit_log_seal;

DROP FUNCTION app.audit_log_seal_reject_change();

DROP FUNCTION app.audit_log_seal_hash(app.audit_log_seal);

DROP TABLE app.audit_log_seal;

DROP INDEX app.index_audit_log_on_xact;

COMMENT ON TABLE app.audit_log IS
'Append-only audit trail, partitioned by month (audit_log_yYYYYmMM, plus
audit_log_default). UPDATE and DELETE are rejected by trigger; the service role
may only SELECT and INSERT. Verify: row_hash = app.audit_log_row_hash(row) and
prev_hash = row_hash of the previous id.';

COMMENT ON COLUMN app.audit_log.row_hash IS
'sha256(prev_hash || canonical JSON of the row); see app.audit_log_row_hash.';

COMMENT ON COLUMN app.audit_log.prev_hash IS
'row_hash of the previous entry in the chain; null only for the first entry.';

ALTER TABLE app.audit_log DROP COLUMN xact;
