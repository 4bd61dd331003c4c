-- Let the database hold the select list every user read used to spell out.
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
