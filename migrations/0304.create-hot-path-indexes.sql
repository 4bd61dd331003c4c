-- Indexes for hot-path queries that `vdata explain` found reading a whole
-- growing table (issue 6):
--   tasks.list_tasks_by_status: live tasks of one status, oldest first;
--   users.list_users_by_created_at, users.list_users_after: users oldest
--   first (offset and keyset pages), with or without soft-deleted rows;
--   projects.list_projects_visible, list_projects_after,
--   count_projects_visible: the public branch of their visibility rule
--   (live public projects by name); the owner branch already has
--   index_projects_on_owner_id;
--   sessions.delete_expired_sessions: sessions revoked long ago (the purge's
--   second arm, beside index_sessions_on_expires_at), so a purge called
--   with few rows to delete reads just those.
--
-- Not CONCURRENTLY, on purpose. CREATE INDEX CONCURRENTLY waits for every
-- transaction older than it, and a second `vdata migrate` queued on the run's
-- advisory lock is one: the build then fails on lock_timeout, and so does the
-- queued run (tests/integration/test_migrations.py, concurrent runs, shows
-- it). A plain CREATE INDEX blocks writes to its table (not reads) until this
-- migration commits; at these sizes (200k tasks, 100k users, 10k projects,
-- 200k sessions: the `vdata explain --analyze` seed) that is well under a
-- second each.
-- Where a table is much larger, a DBA builds its index first, by hand, with
-- CREATE INDEX CONCURRENTLY and the same name and definition, and checks
-- that it is valid (an interrupted build leaves it INVALID: drop it, retry);
-- IF NOT EXISTS then lets this migration go past it.
-- depends: 0303.defer-audit-log-head-update

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS index_tasks_on_status_and_created_at_and_id
ON app.tasks (status, created_at, id)
WHERE deleted_at IS NULL;

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS index_users_on_created_at_and_id
ON app.users (created_at, id);

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS index_projects_on_name_and_id
ON app.projects (name, id)
WHERE is_public AND deleted_at IS NULL;

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS index_sessions_on_revoked_at
ON app.sessions (revoked_at)
WHERE revoked_at IS NOT NULL;
