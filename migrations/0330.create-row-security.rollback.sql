-- Drop the row-level security of 0330: policies, then the functions.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-function

DROP POLICY policy_tasks_update ON app.tasks;

DROP POLICY policy_tasks_insert ON app.tasks;

DROP POLICY policy_tasks_select ON app.tasks;

ALTER TABLE app.tasks DISABLE ROW LEVEL SECURITY;

DROP POLICY policy_projects_update ON app.projects;

DROP POLICY policy_projects_insert ON app.projects;

DROP POLICY policy_projects_select ON app.projects;

ALTER TABLE app.projects DISABLE ROW LEVEL SECURITY;

DROP FUNCTION app.assigned_in_project(uuid);

DROP FUNCTION app.act_as(uuid);

DROP FUNCTION app.acting_user_id();
