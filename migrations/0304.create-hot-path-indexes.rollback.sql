-- Drop the hot-path indexes of 0304, in one transaction like it.
-- squawk-ignore-file require-concurrent-index-deletion

DROP INDEX app.index_sessions_on_revoked_at;

DROP INDEX app.index_projects_on_name_and_id;

DROP INDEX app.index_users_on_created_at_and_id;

DROP INDEX app.index_tasks_on_status_and_created_at_and_id;
