-- The audit trail: one row per change or security event, written in the same
-- statement as the change it records. It is append-only: a trigger rejects
-- UPDATE and DELETE (for the owner too) and the service role is granted only
-- SELECT and INSERT. Each row carries a SHA-256 hash chain (prev_hash ->
-- row_hash) computed by a trigger, so an edit made behind the database's back
-- (or a deleted row) shows up when the chain is re-computed.
--
-- Partitioned by month on occurred_at: retention drops a whole month with
-- DROP TABLE (instant, no DELETE, which the append-only rule forbids anyway),
-- and time-range scans touch only the months asked for. A default partition
-- takes rows for any month nobody created a partition for, so a missed
-- maintenance run never makes writes fail.
-- depends: 0004.create-credentials

CREATE TABLE app.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    entity_type text NOT NULL,
    entity_id text,
    before jsonb,
    after jsonb,
    ip inet,
    request_id text,
    prev_hash bytea,
    row_hash bytea NOT NULL,
    CONSTRAINT pk_audit_log PRIMARY KEY (id, occurred_at),
    CONSTRAINT check_audit_log_actor_length CHECK (length(actor) BETWEEN 1 AND 200),
    CONSTRAINT check_audit_log_action_shape CHECK (action ~ '^[a-z][a-z0-9_.:-]{0,62}$'),
    CONSTRAINT check_audit_log_entity_type_shape
    CHECK (entity_type ~ '^[a-z][a-z0-9_.:-]{0,62}$'),
    CONSTRAINT check_audit_log_entity_id_length CHECK (length(entity_id) <= 200),
    CONSTRAINT check_audit_log_request_id_length CHECK (length(request_id) <= 200),
    CONSTRAINT check_audit_log_hashes_sha256 CHECK (
        octet_length(row_hash) = 32
        AND octet_length(prev_hash) = 32
    )
) PARTITION BY RANGE (occurred_at);

CREATE TABLE app.audit_log_default PARTITION OF app.audit_log DEFAULT;

-- History of one entity, newest first.
CREATE INDEX index_audit_log_on_entity_type_and_entity_id_and_occurred_at
ON app.audit_log (entity_type, entity_id, occurred_at);

-- What one actor did, over a time range.
CREATE INDEX index_audit_log_on_actor_and_occurred_at
ON app.audit_log (actor, occurred_at);

-- Everything in a time range (partition pruning picks the months first).
CREATE INDEX index_audit_log_on_occurred_at ON app.audit_log (occurred_at);

COMMENT ON TABLE app.audit_log IS
'Append-only audit trail, partitioned by month (audit_log_yYYYYmMM, plus
audit_log_default). UPDATE and DELETE are rejected by trigger; the service role
may only SELECT and INSERT. Verify: row_hash = app.audit_log_row_hash(row) and
prev_hash = row_hash of the previous id.';
COMMENT ON COLUMN app.audit_log.id IS
'Drawn by the chain trigger in chain order: ids ascend along the chain, with gaps.';
COMMENT ON COLUMN app.audit_log.actor IS 'Principal that acted (username, key prefix, system).';
COMMENT ON COLUMN app.audit_log.action IS 'What happened, e.g. user.create, session.revoke.';
COMMENT ON COLUMN app.audit_log.before IS 'Row before the change (null for inserts).';
COMMENT ON COLUMN app.audit_log.after IS 'Row after the change (null for deletes).';
COMMENT ON COLUMN app.audit_log.prev_hash IS
'row_hash of the previous entry in the chain; null only for the first entry.';
COMMENT ON COLUMN app.audit_log.row_hash IS
'sha256(prev_hash || canonical JSON of the row); see app.audit_log_row_hash.';

-- The head of the hash chain: one row, locked by every audit insert. Its row
-- lock (not an advisory lock) serializes writers: under READ COMMITTED the
-- second writer waits and then reads the new head; under REPEATABLE READ or
-- SERIALIZABLE it gets a serialization failure (40001), which whole-
-- transaction retries absorb, instead of silently forking the chain.
CREATE TABLE app.audit_log_head (
    singleton boolean NOT NULL DEFAULT TRUE,
    last_id bigint,
    last_hash bytea,
    CONSTRAINT pk_audit_log_head PRIMARY KEY (singleton),
    CONSTRAINT check_audit_log_head_singleton CHECK (singleton)
);

INSERT INTO app.audit_log_head (singleton) VALUES (TRUE);

COMMENT ON TABLE app.audit_log_head IS
'Last id and row_hash of the audit chain. Owner-only; written by app.audit_log_chain().';

CREATE FUNCTION app.audit_log_row_hash(entry app.audit_log)
RETURNS bytea
LANGUAGE sql
STABLE
AS $$
    SELECT sha256(
        coalesce(entry.prev_hash, '\x'::bytea)
        || convert_to(
            jsonb_build_array(
                entry.id,
                to_char(entry.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                entry.actor,
                entry.action,
                entry.entity_type,
                entry.entity_id,
                entry.before,
                entry.after,
                entry.ip::text,
                entry.request_id
            )::text,
            'UTF8'
        )
    );
$$;

COMMENT ON FUNCTION app.audit_log_row_hash(app.audit_log) IS
'sha256(prev_hash || UTF-8 of the JSON array [id, occurred_at as UTC ISO-8601 with
microseconds, actor, action, entity_type, entity_id, before, after, ip, request_id]).';

CREATE FUNCTION app.audit_log_chain()
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

REVOKE EXECUTE ON FUNCTION app.audit_log_chain() FROM public;

CREATE TRIGGER trigger_audit_log_chain
BEFORE INSERT ON app.audit_log
FOR EACH ROW EXECUTE FUNCTION app.audit_log_chain();

CREATE FUNCTION app.audit_log_reject_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'app.audit_log is append-only: % is not allowed', TG_OP
    USING
        ERRCODE = 'insufficient_privilege',
        HINT = 'Old months are removed with app.drop_audit_log_partitions().';
END;
$$;

CREATE TRIGGER trigger_audit_log_reject_change
BEFORE UPDATE OR DELETE ON app.audit_log
FOR EACH ROW EXECUTE FUNCTION app.audit_log_reject_change();

CREATE FUNCTION app.create_audit_log_partitions(months_ahead integer DEFAULT 3)
RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
    this_month constant timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    month_start timestamp;
    partition_name text;
BEGIN
    IF months_ahead NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120, got %', months_ahead
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR step IN 0..months_ahead LOOP
        month_start := this_month + make_interval(months => step);
        partition_name := 'audit_log_' || to_char(month_start, '"y"YYYY"m"MM');
        CONTINUE WHEN to_regclass(format('app.%I', partition_name)) IS NOT NULL;
        -- Fails if audit_log_default already holds rows of that month: move
        -- them out first (see docs/migrations.md).
        EXECUTE format(
            'CREATE TABLE app.%I PARTITION OF app.audit_log FOR VALUES FROM (%L) TO (%L)',
            partition_name,
            month_start AT TIME ZONE 'UTC',
            (month_start + INTERVAL '1 month') AT TIME ZONE 'UTC'
        );
        RETURN NEXT partition_name;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION app.create_audit_log_partitions(integer) IS
'Create the monthly partitions (UTC months) from this month to months_ahead months
ahead, skipping those that exist; return the names created. Owner-only; run by
every `vdata migrate` and meant for a monthly job.';

REVOKE EXECUTE ON FUNCTION app.create_audit_log_partitions(integer) FROM public;

CREATE FUNCTION app.drop_audit_log_partitions(keep_months integer)
RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
    -- Months that start before this one are dropped.
    cutoff constant timestamp := date_trunc('month', now() AT TIME ZONE 'UTC')
    - make_interval(months => keep_months);
    part record;
BEGIN
    IF keep_months < 1 THEN
        RAISE EXCEPTION 'keep_months must be at least 1, got %', keep_months
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR part IN
        SELECT c.relname
        FROM pg_catalog.pg_inherits AS i
        INNER JOIN pg_catalog.pg_class AS c ON i.inhrelid = c.oid
        WHERE
            i.inhparent = 'app.audit_log'::regclass
            AND c.relname ~ '^audit_log_y[0-9]{4}m[0-9]{2}$'
            AND to_date(substr(c.relname, 12), 'YYYY"m"MM') < cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE app.%I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION app.drop_audit_log_partitions(integer) IS
'Retention: drop the monthly partitions older than the last keep_months months
(counting this one); return their names. Owner-only. The oldest surviving row
then starts the hash chain.';

REVOKE EXECUTE ON FUNCTION app.drop_audit_log_partitions(integer) FROM public;

DO $$
BEGIN
    PERFORM app.create_audit_log_partitions(3);
END;
$$;
