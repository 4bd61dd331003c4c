-- Test-only: the projects and tasks access checks with every predicate on the
-- user removed, so that only the row-level security policies (migrations/0330)
-- stand between a user and a row. State predicates (deleted, archived) stay:
-- those are the queries' rules, not the policies'.

-- name: get_project(id, as_user)$
-- Return the id of the live project id if the policies let as_user see it.
SELECT p.id
FROM app.projects AS p
WHERE
    p.id = :id
    AND p.deleted_at IS NULL
    AND (SELECT app.act_as(:as_user));

-- name: update_project(id, as_user)$
-- Change the description of the live, unarchived project id if the policies
-- let as_user; return its id.
UPDATE app.projects AS p
SET
    description = 'changed by rls test',
    updated_by = 'rls'
WHERE
    p.id = :id
    AND p.deleted_at IS NULL
    AND p.archived_at IS NULL
    AND (SELECT app.act_as(:as_user))
RETURNING p.id;

-- name: get_task(id, as_user)$
-- Return the id of the live task id of a live project if the policies let
-- as_user see it.
SELECT t.id
FROM app.tasks AS t
WHERE
    t.id = :id
    AND t.deleted_at IS NULL
    AND EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = t.project_id
            AND p.deleted_at IS NULL
    )
    AND (SELECT app.act_as(:as_user));

-- name: insert_task(project_id, as_user)$
-- Add a task to the live, unarchived project project_id if the policies let
-- as_user; return its id. The insert policy refuses with 42501.
INSERT INTO app.tasks (project_id, title, created_by, updated_by)
SELECT
    p.id AS project_id,
    'added by rls test' AS title,
    'rls' AS created_by,
    'rls' AS updated_by
FROM app.projects AS p
WHERE
    p.id = :project_id
    AND p.deleted_at IS NULL
    AND p.archived_at IS NULL
    AND (SELECT app.act_as(:as_user))
RETURNING id;

-- name: update_task(id, as_user, op)$
-- Apply op (update: title; assign: hand it to nobody; delete: soft delete)
-- to the live task id of a live, unarchived project if the policies let
-- as_user; return its id. The update policy's check refuses with 42501.
UPDATE app.tasks AS t
SET
    title = CASE WHEN :op = 'update' THEN 'changed by rls test' ELSE t.title END,
    assignee_id = CASE WHEN :op = 'assign' THEN NULL ELSE t.assignee_id END,
    deleted_at = CASE WHEN :op = 'delete' THEN now() END,
    deleted_by = CASE WHEN :op = 'delete' THEN 'rls' END,
    updated_by = 'rls'
WHERE
    t.id = :id
    AND t.deleted_at IS NULL
    AND EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = t.project_id
            AND p.deleted_at IS NULL
            AND p.archived_at IS NULL
    )
    AND (SELECT app.act_as(:as_user))
RETURNING t.id;

-- name: list_projects()
-- Return every project the policies let the acting user (set by the
-- transaction, not here) see.
SELECT
    p.id,
    p.owner_id,
    p.name,
    p.description,
    p.is_public,
    p.archived_at,
    p.created_at,
    p.created_by,
    p.updated_at,
    p.updated_by,
    p.version,
    p.deleted_at,
    p.deleted_by
FROM app.projects AS p
ORDER BY p.id;

-- name: list_private_projects()
-- Return every private project the policies let the acting user (set by the
-- transaction, not here) see.
SELECT
    p.id,
    p.owner_id,
    p.name,
    p.description,
    p.is_public,
    p.archived_at,
    p.created_at,
    p.created_by,
    p.updated_at,
    p.updated_by,
    p.version,
    p.deleted_at,
    p.deleted_by
FROM app.projects AS p
WHERE NOT p.is_public
ORDER BY p.id;

-- name: get_deleted_project(id, as_user)$
-- Return the id of the soft-deleted project id if the policies let as_user
-- see it.
SELECT p.id
FROM app.projects AS p
WHERE
    p.id = :id
    AND p.deleted_at IS NOT NULL
    AND (SELECT app.act_as(:as_user));

-- name: restore_project(id, as_user)$
-- Undo the soft delete of the project id if the policies let as_user;
-- return its id.
UPDATE app.projects AS p
SET
    deleted_at = NULL,
    deleted_by = NULL,
    updated_by = 'rls'
WHERE
    p.id = :id
    AND p.deleted_at IS NOT NULL
    AND (SELECT app.act_as(:as_user))
RETURNING p.id;

-- name: get_deleted_task(id, as_user)$
-- Return the id of the soft-deleted task id if the policies let as_user see
-- it.
SELECT t.id
FROM app.tasks AS t
WHERE
    t.id = :id
    AND t.deleted_at IS NOT NULL
    AND (SELECT app.act_as(:as_user));

-- name: restore_task(id, as_user)$
-- Undo the soft delete of the task id if the policies let as_user; return
-- its id. The update policy's check refuses with 42501.
UPDATE app.tasks AS t
SET
    deleted_at = NULL,
    deleted_by = NULL,
    updated_by = 'rls'
WHERE
    t.id = :id
    AND t.deleted_at IS NOT NULL
    AND (SELECT app.act_as(:as_user))
RETURNING t.id;
