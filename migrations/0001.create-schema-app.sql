-- vdata keeps every object in one schema, app, so that the owner can grant
-- and revoke it as a unit and search_path tricks cannot shadow it. This step
-- also creates the helpers that every later table relies on: the trigger
-- function that stamps rows (optimistic-lock version, updated_at) and the
-- function that grants the service role its privileges; the role name is a
-- parameter because yoyo's plain SQL has no templating.

CREATE SCHEMA app;

COMMENT ON SCHEMA app IS
'vdata: users, access control, credentials, audit trail, projects and tasks.';

CREATE FUNCTION app.stamp_row()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A new row always starts at version 1, last changed by its creator.
        NEW.version := 1;
        NEW.updated_at := NEW.created_at;
        NEW.updated_by := coalesce(NEW.updated_by, NEW.created_by);
    ELSE
        -- The optimistic lock: writers say WHERE version = :expected_version
        -- and the database, not the caller, moves the version on.
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
        NEW.created_at := OLD.created_at;
        NEW.created_by := OLD.created_by;
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION app.stamp_row() IS
'BEFORE INSERT OR UPDATE row trigger: version starts at 1 and goes up by one on
every UPDATE, updated_at follows the clock, created_at/created_by never change.';

CREATE FUNCTION app.grant_service_role(role_name name)
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

REVOKE EXECUTE ON FUNCTION app.grant_service_role(name) FROM public;
