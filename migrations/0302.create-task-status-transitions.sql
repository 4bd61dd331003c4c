-- The allowed task status transitions, in one place the database enforces:
-- every status change (one task or many) updates only WHERE this function
-- says yes, so an illegal change touches no row whoever sends it. A function
-- rather than a table, because the service role gets DML on every table and
-- must not be able to widen the rules.
--
--   todo        -> in_progress, blocked, done, cancelled
--   in_progress -> todo, blocked, done, cancelled
--   blocked     -> todo, in_progress, cancelled
--   done        -> todo, in_progress          (reopen)
--   cancelled   -> todo                       (revive)
-- depends: 0301.create-audit-log-chain-head

CREATE FUNCTION app.task_status_transition_allowed(from_status text, to_status text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT (from_status, to_status) IN (
        VALUES
        ('todo', 'in_progress'),
        ('todo', 'blocked'),
        ('todo', 'done'),
        ('todo', 'cancelled'),
        ('in_progress', 'todo'),
        ('in_progress', 'blocked'),
        ('in_progress', 'done'),
        ('in_progress', 'cancelled'),
        ('blocked', 'todo'),
        ('blocked', 'in_progress'),
        ('blocked', 'cancelled'),
        ('done', 'todo'),
        ('done', 'in_progress'),
        ('cancelled', 'todo')
    );
$$;

COMMENT ON FUNCTION app.task_status_transition_allowed(text, text) IS
'True when a task may move from from_status to to_status; staying put is not a
transition. The status UPDATEs of sql/tasks/tasks.sql check it in their WHERE.';
