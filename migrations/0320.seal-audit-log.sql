-- Take the audit hash chain off the writers' path. Until now every audited
-- write locked the one-row app.audit_log_head to link its row to the one
-- before it, so all writing transactions of the service queued on that row
-- (measured: 0.72-0.77x the unchained write rate on one connection, 0.52x
-- with 64 tasks on a pool of 10).
--
-- Now a writer only hashes its own row (row_hash, as before, with prev_hash
-- null) and records its transaction id (xact); it takes no shared lock.
-- A sealer, app.seal_audit_log(), run every few seconds (`vdata audit seal
-- --every`), appends one row to app.audit_log_seal listing the id and
-- row_hash of every audit row committed since the previous seal, and links
-- the seals into one hash chain (each seal_hash covers the previous one).
-- Which rows are new is decided by transaction snapshots: a seal stores the
-- snapshot it was taken under, and the next one takes the rows whose
-- transaction was still running then and has committed now, so no row is
-- missed or sealed twice, whatever order the writers commit in.
--
-- History is not rewritten: rows written before this migration keep their
-- prev_hash links; app.audit_log_head keeps their head (last_id,
-- last_hash), frozen, and the first seal links to it. The table is locked
-- while this runs (writers wait; nothing is read from audit_log), so every
-- row with an id up to that head is linked the old way and every later row
-- is sealed. See docs/audit-chain.md.
-- Drops 0303's commit trigger function, which nothing else calls:
-- squawk-ignore-file require-concurrent-index-creation, ban-drop-function
-- depends: 0310.create-user-rows

LOCK TABLE app.audit_log IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE app.audit_log ADD COLUMN xact bigint;

COMMENT ON COLUMN app.audit_log.xact IS
'Top-level id of the writing transaction, pg_current_xact_id() (set by the insert
trigger); the sealer
seals a row once this transaction has committed. Null on rows linked by prev_hash.';

COMMENT ON COLUMN app.audit_log.prev_hash IS
'row_hash of the previous entry, on rows written before sealing (migration 0320);
null on the first of them and on every sealed row.';

COMMENT ON COLUMN app.audit_log.row_hash IS
'sha256(prev_hash || canonical JSON of the row); see app.audit_log_row_hash.
Sealed rows have no prev_hash: the hash covers the row alone.';

COMMENT ON TABLE app.audit_log IS
'Append-only audit trail, partitioned by month (audit_log_yYYYYmMM, plus
audit_log_default). UPDATE and DELETE are rejected by trigger; the service role
may only SELECT and INSERT. Verify: row_hash = app.audit_log_row_hash(row); rows up
to audit_log_head.last_id are linked by prev_hash, later ones listed in
app.audit_log_seal.';

-- The sealer finds the rows of recently committed transactions by xact.
-- A btree: xact grows with insertion order, so entries go to the rightmost
-- leaf, and the sealer reads only the new rows. (A BRIN index would cost the
-- writers less, but a range autovacuum has not summarized yet is read whole
-- by every seal: 100-200 ms per seal at 100,000 rows, measured.)
CREATE INDEX index_audit_log_on_xact ON app.audit_log (xact);

ALTER TABLE app.audit_log_head ADD COLUMN last_seal_id bigint;

ALTER TABLE app.audit_log_head ADD COLUMN last_seal_hash bytea;

COMMENT ON TABLE app.audit_log_head IS
'last_id and last_hash: the newest row linked by prev_hash (frozen since migration
0320). last_seal_id and last_seal_hash: the newest seal, written by
app.seal_audit_log(). Owner-only.';

CREATE TABLE app.audit_log_seal (
    seal_id bigint GENERATED ALWAYS AS IDENTITY,
    sealed_at timestamptz NOT NULL DEFAULT now(),
    taken_under pg_snapshot NOT NULL,
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    ids bigint[] NOT NULL,
    row_hashes bytea[] NOT NULL,
    prev_hash bytea,
    seal_hash bytea NOT NULL,
    CONSTRAINT pk_audit_log_seal PRIMARY KEY (seal_id),
    CONSTRAINT check_audit_log_seal_entries CHECK (
        cardinality(ids) >= 1
        AND cardinality(ids) = cardinality(row_hashes)
        AND first_id <= last_id
    ),
    CONSTRAINT check_audit_log_seal_hashes_sha256 CHECK (
        octet_length(seal_hash) = 32
        AND octet_length(prev_hash) = 32
    )
);

COMMENT ON TABLE app.audit_log_seal IS
'Seals of the audit trail, appended by app.seal_audit_log() only: each lists the id
and row_hash of the audit rows committed since the seal before it (ids ascending),
and seal_hash = app.audit_log_seal_hash(seal) links it to that seal. Append-only;
the service role may only read it.';
COMMENT ON COLUMN app.audit_log_seal.taken_under IS
'Snapshot the seal was taken under: it holds every row whose xact is visible in it
and not in the previous seal''s snapshot.';
COMMENT ON COLUMN app.audit_log_seal.prev_hash IS
'seal_hash of the previous seal; for the first seal, the last_hash of the rows
linked by prev_hash (null on a database that had none).';

CREATE FUNCTION app.audit_log_seal_hash(seal app.audit_log_seal)
RETURNS bytea
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT sha256(
        coalesce(seal.prev_hash, '\x'::bytea)
        || int8send(seal.seal_id)
        || int8send(seal.first_id)
        || int8send(seal.last_id)
        || (
            SELECT string_agg(int8send(e.id) || e.row_hash, '\x'::bytea ORDER BY e.n)
            FROM unnest(seal.ids, seal.row_hashes) WITH ORDINALITY AS e (id, row_hash, n)
        )
    );
$$;

COMMENT ON FUNCTION app.audit_log_seal_hash(app.audit_log_seal) IS
'sha256(prev_hash || int8 seal_id || int8 first_id || int8 last_id || for each
entry in order: int8 id || row_hash), int8 as 8 bytes big-endian.';

CREATE FUNCTION app.audit_log_seal_reject_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'app.audit_log_seal is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER trigger_audit_log_seal_reject_change
BEFORE UPDATE OR DELETE ON app.audit_log_seal
FOR EACH ROW EXECUTE FUNCTION app.audit_log_seal_reject_change();

-- The writer's trigger: no lock, no link. Not SECURITY DEFINER (it touches
-- nothing the writer cannot): every name is schema-qualified instead.
DROP TRIGGER trigger_audit_log_chain_commit ON app.audit_log;

DROP FUNCTION app.audit_log_chain_commit();

CREATE OR REPLACE FUNCTION app.audit_log_chain()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.id := pg_catalog.nextval('app.audit_log_id_seq'::pg_catalog.regclass);
    NEW.xact := pg_catalog.pg_current_xact_id()::text::bigint;
    NEW.prev_hash := NULL;
    NEW.row_hash := app.audit_log_row_hash(NEW);
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION app.audit_log_chain() IS
'BEFORE INSERT row trigger on audit_log: draws the id, records the transaction id
and hashes the row; app.seal_audit_log() links it into the chain after commit.';

CREATE FUNCTION app.seal_audit_log()
RETURNS TABLE (seal_id bigint, rows_sealed integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The new rows are found through the index on xact, however little the
-- planner knows of the table (a fresh partition has no statistics, and a
-- cached generic plan none of the bound): a sequential scan would read the
-- whole trail at every seal.
SET enable_seqscan = off
AS $$
DECLARE
    head record;
    previous pg_snapshot;
    since_xact bigint;
    running bigint[];
    taken pg_snapshot;
    entry_ids bigint[];
    entry_hashes bytea[];
    sealed app.audit_log_seal;
BEGIN
    -- Our own uncommitted rows would look committed to the snapshot test.
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'seal the audit trail in a transaction of its own'
        USING ERRCODE = 'active_sql_transaction';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'seal the audit trail under READ COMMITTED'
        USING ERRCODE = 'invalid_transaction_state';
    END IF;
    -- One sealer at a time; the next statements see the seal before ours.
    SELECT h.last_hash, h.last_seal_id, h.last_seal_hash INTO head
    FROM app.audit_log_head AS h
    WHERE h.singleton
    FOR UPDATE;
    SELECT s.taken_under INTO previous
    FROM app.audit_log_seal AS s
    WHERE s.seal_id = head.last_seal_id;
    -- The rows the previous seal could not see: those of transactions that
    -- were running then (its xip list) or started later (from its xmax).
    -- Not "from its xmin": a long transaction anywhere on the server holds
    -- xmin back, and every seal would re-read all rows written since.
    since_xact := coalesce(pg_snapshot_xmax(previous)::text::bigint, 0);
    running := ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(previous) AS x);
    -- One statement: the rows it reads are exactly those whose transaction
    -- is visible in the snapshot it records.
    SELECT
        cur.snap,
        fresh.ids,
        fresh.row_hashes
    INTO taken, entry_ids, entry_hashes
    FROM (SELECT pg_current_snapshot() AS snap) AS cur
    CROSS JOIN LATERAL (
        SELECT
            array_agg(a.id ORDER BY a.id) AS ids,
            array_agg(a.row_hash ORDER BY a.id) AS row_hashes
        FROM app.audit_log AS a
        WHERE
            a.xact IS NOT NULL
            AND pg_visible_in_snapshot(a.xact::text::xid8, cur.snap)
            AND (a.xact >= since_xact OR a.xact = ANY(running))
    ) AS fresh;
    IF entry_ids IS NULL THEN
        RETURN;
    END IF;
    -- The hash covers seal_id: draw it first.
    sealed := ROW(
        nextval(pg_get_serial_sequence('app.audit_log_seal', 'seal_id')),
        now(),
        taken,
        entry_ids[1],
        entry_ids[cardinality(entry_ids)],
        entry_ids,
        entry_hashes,
        coalesce(head.last_seal_hash, head.last_hash),
        NULL
    )::app.audit_log_seal;
    sealed.seal_hash := app.audit_log_seal_hash(sealed);
    INSERT INTO app.audit_log_seal OVERRIDING SYSTEM VALUE
    SELECT (sealed).*;
    UPDATE app.audit_log_head AS h
    SET
        last_seal_id = sealed.seal_id,
        last_seal_hash = sealed.seal_hash
    WHERE h.singleton;
    seal_id := sealed.seal_id;
    rows_sealed := cardinality(entry_ids);
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION app.seal_audit_log() IS
'Append one seal listing the audit rows committed since the previous seal and
return its id and row count (no row when there was nothing to seal). Run it in a
transaction of its own, under READ COMMITTED; concurrent sealers wait for each
other. SECURITY DEFINER: any role that may run it seals, none can forge a seal.';

CREATE FUNCTION app.audit_log_seal_head()
RETURNS TABLE (
    linked_id bigint, linked_hash bytea, last_seal_id bigint, last_seal_hash bytea
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        h.last_id,
        h.last_hash,
        h.last_seal_id,
        h.last_seal_hash
    FROM app.audit_log_head AS h
    WHERE h.singleton;
$$;

COMMENT ON FUNCTION app.audit_log_seal_head() IS
'The newest row linked by prev_hash (linked_id, linked_hash: frozen since 0320) and
the newest seal (read-only view of audit_log_head). SECURITY DEFINER so that
verification as the service role can check both tails.';

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
    read_only constant name[] := ARRAY['signing_keys', 'audit_log_seal']::name[];
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
signing_keys and audit_log_seal, SELECT and INSERT only on append-only tables; never
TRUNCATE, REFERENCES, TRIGGER or DDL).
Idempotent. Returns false, changing nothing, when the role does not exist.
Run by `vdata migrate --app-role NAME` after every migration run.';
