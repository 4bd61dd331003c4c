-- Keys vdata signs with, kept inside the database, so that every instance of
-- a service on this database signs and verifies keyset-pagination cursors
-- alike with nothing to configure (Settings.secret_key, when set, is used
-- instead). The key is drawn here, once per database, from the server's
-- strong random source: gen_random_uuid() is core since PostgreSQL 13 (no
-- pgcrypto needed, which some builds lack) and uses pg_strong_random, 122
-- random bits per UUID; sha256 of two of them is a 32-byte key holding 244
-- random bits. The service role may read it and never change it
-- (grant_service_role gains a read-only list); PUBLIC may not even read it.
-- depends: 0305.drop-audit-log-id-identity

CREATE TABLE app.signing_keys (
    purpose text NOT NULL,
    secret bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_signing_keys PRIMARY KEY (purpose),
    CONSTRAINT check_signing_keys_purpose_shape CHECK (purpose ~ '^[a-z][a-z0-9_.:-]{0,62}$'),
    CONSTRAINT check_signing_keys_secret_length CHECK (octet_length(secret) >= 32)
);

REVOKE ALL ON app.signing_keys FROM public;

INSERT INTO app.signing_keys (purpose, secret)
VALUES ('cursor', sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())));

COMMENT ON TABLE app.signing_keys IS
'HMAC keys vdata signs with, one per purpose (''cursor'': keyset-pagination cursors),
drawn from the server''s strong random source by migration 0306. The service role
may only read them. Replacing a key (as the owner) invalidates what it signed:
clients start their listings over.';

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
