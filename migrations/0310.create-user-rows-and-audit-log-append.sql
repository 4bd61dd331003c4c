-- Let the database hold two things every statement used to spell out:
--
-- app.user_rows: a user as vdata returns it (vdata.models.users.User, the
-- columns in field order): app.users without its secrets (password and
-- verification-token hashes), last_login_ip as text. Reads select from it
-- instead of listing the columns; `vdata check` compares its columns with the
-- Struct, and the planner inlines it, so every index on app.users still
-- serves (`vdata explain --fail-on-seqscan`). Writes lock the row they
-- change through it (SELECT u.* FROM app.user_rows AS u ... FOR UPDATE),
-- which takes UPDATE on the view. security_invoker (PostgreSQL 15+) makes
-- whoever reads, locks or writes through the view need that same privilege
-- on app.users itself, so the view grants nothing the table does not:
-- SELECT and UPDATE on it go to PUBLIC, and the privileges that decide stay
-- on app.users (the service role's, from grant_service_role). INSERT and
-- DELETE through it are not granted.
--
-- app.audit_log_append(): the one INSERT of an audit event that every
-- audited write makes in the same statement as its change. SECURITY INVOKER:
-- the caller needs INSERT on app.audit_log, so it gives no one a write they
-- did not have; the append-only trigger, the hash-chain trigger and the
-- service role's privileges (SELECT and INSERT only) apply unchanged.
-- PL/pgSQL, so that each session plans its INSERT once (a SQL-language
-- function is planned again on every call before PostgreSQL 18).
-- depends: 0304.create-hot-path-indexes

CREATE VIEW app.user_rows
WITH (security_invoker = TRUE)
AS
SELECT
    u.id,
    u.username,
    u.email,
    u.full_name,
    u.is_active,
    u.email_verified_at,
    u.failed_login_count,
    u.locked_until,
    u.last_login_at,
    u.password_changed_at,
    u.created_at,
    u.created_by,
    u.updated_at,
    u.updated_by,
    u.version,
    u.deleted_at,
    u.deleted_by,
    host(u.last_login_ip) AS last_login_ip
FROM app.users AS u;

COMMENT ON VIEW app.user_rows IS
'A user as vdata returns it (vdata.models.users.User, columns in field order): app.users
without password_hash and the email-verification token, last_login_ip as text.
security_invoker: reading or locking a row through it takes the same privilege on
app.users, so SELECT and UPDATE (for FOR UPDATE) on the view are granted to PUBLIC.';

REVOKE ALL ON app.user_rows FROM public;

GRANT SELECT, UPDATE ON app.user_rows TO public;

CREATE FUNCTION app.audit_log_append(
    actor text,
    action text,
    entity_type text,
    entity_id text,
    before jsonb DEFAULT NULL,
    after jsonb DEFAULT NULL,
    ip inet DEFAULT NULL,
    request_id text DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after,
        ip,
        request_id
    )
    VALUES (
        audit_log_append.actor,
        audit_log_append.action,
        audit_log_append.entity_type,
        audit_log_append.entity_id,
        audit_log_append.before,
        audit_log_append.after,
        audit_log_append.ip,
        audit_log_append.request_id
    );
END;
$$;

COMMENT ON FUNCTION app.audit_log_append(text, text, text, text, jsonb, jsonb, inet, text) IS
'Append one event to app.audit_log, with the caller''s privileges (SECURITY INVOKER:
INSERT on app.audit_log is needed). Audited writes call it in the statement that makes
the change: FROM changed AS c CROSS JOIN LATERAL app.audit_log_append(...).';
