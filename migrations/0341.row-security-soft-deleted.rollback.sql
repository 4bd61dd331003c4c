-- Put back the policies of 0330: soft-deleted tasks visible to whoever may
-- see their project or is their assignee, and changeable by their assignee;
-- a soft-deleted project visible to the assignee of a live task in it.

ALTER POLICY policy_tasks_update ON app.tasks
USING (
    assignee_id = (SELECT app.acting_user_id())
    OR EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = tasks.project_id
            AND p.owner_id = (SELECT app.acting_user_id())
    )
);

ALTER POLICY policy_tasks_select ON app.tasks
USING (
    assignee_id = (SELECT app.acting_user_id())
    OR EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE p.id = tasks.project_id
    )
);

ALTER POLICY policy_projects_select ON app.projects
USING (
    owner_id = (SELECT app.acting_user_id())
    OR (is_public AND deleted_at IS NULL)
    OR app.assigned_in_project(id)
);
