-- Row-level security on projects and tasks: a second wall behind the access
-- rules every query already states in its WHERE clause. PostgreSQL itself
-- hides a private project, and its tasks, from any role but the owner unless
-- the statement runs for a user who may see them: one forgotten predicate in
-- a query, or an ad-hoc session with the service role's credentials, then
-- shows nothing private.
--
-- The acting user is the transaction-local setting vdata.user_id, set with
-- app.act_as(user_id) (set_config(..., is_local => true)): it ends with the
-- transaction, so it cannot leak to the next request on a pooled connection
-- or a PgBouncer server connection. A single statement sets it in its own
-- implicit transaction, with no extra round trip: every query that takes
-- :as_user says `AND (SELECT app.act_as(:as_user))` in its outermost WHERE,
-- which the planner runs as a one-time filter before it reads any row.
-- With no user set, app.acting_user_id() is null and only live public
-- projects (and their tasks) are visible.
--
-- Who bypasses the policies, on purpose: the owner of the tables (migrations,
-- retention, maintenance), since row security is enabled, not forced; a
-- superuser; a role with BYPASSRLS. The service role does not.
-- api_keys and sessions get no policies: they are found by the hash of the
-- secret before any user is known, and a row holds no usable credential.
-- depends: 0310.create-user-rows

CREATE FUNCTION app.acting_user_id()
RETURNS uuid
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT nullif(current_setting('vdata.user_id', TRUE), '')::uuid;
$$;

COMMENT ON FUNCTION app.acting_user_id() IS
'The user the current transaction acts for (setting vdata.user_id), or null.
Read by the row-level security policies of app.projects and app.tasks.';

CREATE FUNCTION app.act_as(user_id uuid)
RETURNS boolean
LANGUAGE sql
VOLATILE
AS $$
    SELECT set_config('vdata.user_id', coalesce(user_id::text, ''), TRUE) IS NOT NULL;
$$;

COMMENT ON FUNCTION app.act_as(uuid) IS
'Make user_id (null: nobody) the acting user until the end of the current
transaction; return true. Queries call it as `(SELECT app.act_as(:as_user))`.';

-- An assignee sees the task assigned to them, and so must see its project
-- row to pass the tasks queries' own project check. Reading app.tasks from
-- a projects policy would recurse into the tasks policy, which reads
-- app.projects: this function reads app.tasks as its owner instead.
CREATE FUNCTION app.assigned_in_project(project_id uuid)
RETURNS boolean
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT t.id
        FROM app.tasks AS t
        WHERE
            t.project_id = assigned_in_project.project_id
            AND t.assignee_id = app.acting_user_id()
            AND t.deleted_at IS NULL
    );
$$;

COMMENT ON FUNCTION app.assigned_in_project(uuid) IS
'True when a live task of project_id is assigned to the acting user. SECURITY
DEFINER: the projects policy calls it without recursing into the tasks policy.';

ALTER TABLE app.projects ENABLE ROW LEVEL SECURITY;

-- In every policy the acting user is read as (SELECT app.acting_user_id()):
-- a scalar subquery the executor runs once per statement, not once per row.
-- Owners see their projects (deleted ones too: a soft delete returns the
-- row it deleted); everyone sees live public ones; an assignee sees the
-- project of a task assigned to them.
CREATE POLICY policy_projects_select ON app.projects
FOR SELECT
USING (
    owner_id = (SELECT app.acting_user_id())
    OR (is_public AND deleted_at IS NULL)
    OR app.assigned_in_project(id)
);

CREATE POLICY policy_projects_insert ON app.projects
FOR INSERT
WITH CHECK (owner_id = (SELECT app.acting_user_id()));

CREATE POLICY policy_projects_update ON app.projects
FOR UPDATE
USING (owner_id = (SELECT app.acting_user_id()))
WITH CHECK (owner_id = (SELECT app.acting_user_id()));

ALTER TABLE app.tasks ENABLE ROW LEVEL SECURITY;

-- A task is visible when it is assigned to the acting user, or when its
-- project is visible (the projects policy decides, inside the subquery).
-- Each task probes its project by primary key: a cost per row read, never
-- per project the user has (an IN over the user's projects, hashed once per
-- statement, measured slower for one task and no faster for a page of 50).
CREATE POLICY policy_tasks_select ON app.tasks
FOR SELECT
USING (
    assignee_id = (SELECT app.acting_user_id())
    OR EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE p.id = tasks.project_id
    )
);

CREATE POLICY policy_tasks_insert ON app.tasks
FOR INSERT
WITH CHECK (
    EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = tasks.project_id
            AND p.owner_id = (SELECT app.acting_user_id())
    )
);

-- The project owner may change a task; its assignee too, but the row must
-- stay theirs and live: an assignee can neither hand the task on nor delete it.
CREATE POLICY policy_tasks_update ON app.tasks
FOR UPDATE
USING (
    assignee_id = (SELECT app.acting_user_id())
    OR EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = tasks.project_id
            AND p.owner_id = (SELECT app.acting_user_id())
    )
)
WITH CHECK (
    (assignee_id = (SELECT app.acting_user_id()) AND deleted_at IS NULL)
    OR EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = tasks.project_id
            AND p.owner_id = (SELECT app.acting_user_id())
    )
);
-- No DELETE policies: with row security on, the service role's DELETE
-- reaches no row of either table (vdata only soft-deletes them).
