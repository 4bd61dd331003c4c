-- Row-level security and soft delete: a soft-deleted task or project is the
-- project owner's alone, in the policies as in the queries. 0330 left three
-- ways past that rule to raw SQL as the service role:
-- - policy_tasks_update let an assignee change a soft-deleted task assigned
--   to them, so an UPDATE setting deleted_at to null restored it (the check
--   only asks that the new row be live); only the owner may restore;
-- - policy_tasks_select showed a soft-deleted task to its assignee and to
--   anyone who may see its project (e.g. a public one);
-- - policy_projects_select showed a soft-deleted project to the assignee of
--   a live task in it.
-- The owner keeps seeing and changing both (a soft delete returns the row
-- it deleted; restore finds it), so the service's own restore is unchanged.
-- depends: 0330.create-row-security

ALTER POLICY policy_projects_select ON app.projects
USING (
    owner_id = (SELECT app.acting_user_id())
    OR (deleted_at IS NULL AND (is_public OR app.assigned_in_project(id)))
);

-- A live task: its assignee, or anyone who may see its project. A deleted
-- one: the project owner only (still one probe of the project per task).
ALTER POLICY policy_tasks_select ON app.tasks
USING (
    (assignee_id = (SELECT app.acting_user_id()) AND deleted_at IS NULL)
    OR EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = tasks.project_id
            AND (tasks.deleted_at IS NULL OR p.owner_id = (SELECT app.acting_user_id()))
    )
);

-- The assignee may change a live task only; the project owner any of its
-- tasks, deleted or not (WITH CHECK as in 0330).
ALTER POLICY policy_tasks_update ON app.tasks
USING (
    (assignee_id = (SELECT app.acting_user_id()) AND deleted_at IS NULL)
    OR EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = tasks.project_id
            AND p.owner_id = (SELECT app.acting_user_id())
    )
);
