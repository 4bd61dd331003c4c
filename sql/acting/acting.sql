-- The acting user of row-level security (migrations/0330): the
-- transaction-local setting vdata.user_id, read by app.acting_user_id().

-- name: set_acting_user(user_id)$
-- Make user_id (null: nobody) the acting user until the end of the current
-- transaction and return it as text ('' for nobody). set_config(..., TRUE)
-- is transaction-local, so it never outlives the transaction on a pooled or
-- PgBouncer connection. The builtin, not app.act_as, so that it runs on a
-- database without vdata's own schema too.
SELECT set_config('vdata.user_id', coalesce(:user_id::uuid::text, ''), TRUE) AS user_id;

-- name: get_row_security_active()$
-- Return true if row-level security applies to this session's role on
-- app.projects (false for its owner, a superuser or a BYPASSRLS role).
SELECT row_security_active('app.projects') AS active;
