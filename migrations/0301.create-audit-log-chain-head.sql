-- Let the service role read the head of the audit hash chain (last id and
-- row_hash) without access to app.audit_log_head itself. verify_chain
-- compares the newest row with the head: a row appended by the owner with
-- the chain trigger bypassed, or the newest rows deleted, then show up even
-- though every link below them still holds.
-- depends: 0007.create-tasks

CREATE FUNCTION app.audit_log_chain_head()
RETURNS TABLE (last_id bigint, last_hash bytea)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        h.last_id,
        h.last_hash
    FROM app.audit_log_head AS h
    WHERE h.singleton;
$$;

COMMENT ON FUNCTION app.audit_log_chain_head() IS
'Last id and row_hash the chain trigger linked (read-only view of audit_log_head).
SECURITY DEFINER so that verification as the service role can check the tail.';
