-- Drop the signing keys and give grant_service_role back its 0001 body.
-- squawk-ignore-file ban-drop-table

CREATE OR REPLACE FUNCTION app.grant_service_role(role_name name)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    -- Tables the service may read and append to, but never change.
    append_only constant name[] := ARRAY['audit_log']::name[];
    -- Tables only the owner's SECURITY DEFINER functions touch.
    owner_only constant name[] := ARRAY['audit_log_head']::name[];
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
'Grant the service role exactly the DML it needs on every app table (SELECT and
INSERT only on append-only tables; never TRUNCATE, REFERENCES, TRIGGER or DDL).
Idempotent. Returns false, changing nothing, when the role does not exist.
Run by `vdata migrate --app-role NAME` after every migration run.';

DROP TABLE app.signing_keys;
