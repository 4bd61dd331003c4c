-- Tasks: soft delete and restore (its undo), one task or many, and bulk
-- assignment. Each is for the owner of the task's project, which must be
-- live and not archived; a soft-deleted task is visible to nobody (reads
-- say NotFoundError), so only that owner learns it exists. Tasks have no
-- unique values: a restore never conflicts. Bulk statements are all or
-- nothing: they change rows only when every id qualifies, lock them in id
-- order and write one audit event per task.
-- sqlfluff:templater:placeholder:as_user:0
-- sqlfluff:templater:placeholder:assignee_id:0
-- sqlfluff:templater:placeholder:id:0
-- (For the linter only: render these parameters as literals, so that RF02
-- does not take them for unqualified columns of a correlated subquery.)

-- name: soft_delete_task(id, as_user, expected_version, actor)^
-- Mark a live task of a live, unarchived project that as_user owns deleted,
-- at expected_version unless it is null, with its task.soft_delete audit
-- event; return the deleted row, or nothing (see get_task_access).
WITH old AS (
    SELECT t.*
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
                AND p.archived_at IS NULL
                AND p.owner_id = :as_user
        )
        AND (:expected_version::integer IS NULL OR t.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        deleted_at = now(),
        deleted_by = :actor,
        updated_by = :actor
    FROM old AS o
    WHERE t.id = o.id
    RETURNING
        t.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'task.soft_delete' AS action,
        'task' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.project_id,
    c.title,
    c.description,
    c.status,
    c.priority,
    c.assignee_id,
    c.due_at,
    c.completed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c
WHERE (SELECT app.act_as(:as_user));

-- name: restore_task(id, as_user, expected_version, actor)^
-- Undo the soft delete of a task of a live, unarchived project that as_user
-- owns, at expected_version unless it is null, with its task.restore audit
-- event; return the restored row, or nothing (see get_deleted_task_access).
WITH old AS (
    SELECT t.*
    FROM app.tasks AS t
    WHERE
        t.id = :id
        AND t.deleted_at IS NOT NULL
        AND EXISTS (
            SELECT p.id
            FROM app.projects AS p
            WHERE
                p.id = t.project_id
                AND p.deleted_at IS NULL
                AND p.archived_at IS NULL
                AND p.owner_id = :as_user
        )
        AND (:expected_version::integer IS NULL OR t.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        deleted_at = NULL,
        deleted_by = NULL,
        updated_by = :actor
    FROM old AS o
    WHERE t.id = o.id
    RETURNING
        t.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'task.restore' AS action,
        'task' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.project_id,
    c.title,
    c.description,
    c.status,
    c.priority,
    c.assignee_id,
    c.due_at,
    c.completed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c
WHERE (SELECT app.act_as(:as_user));

-- name: get_deleted_task_access(id, as_user)^
-- Return, for the soft-deleted task id of a live project, its version and
-- whether as_user owns the project and the project is archived; nothing if
-- the task is not soft-deleted or its project is gone. Used to explain why
-- a restore touched no row.
-- not-null: is_owner, archived
SELECT
    t.version,
    p.owner_id = :as_user AS is_owner,
    p.archived_at IS NOT NULL AS archived
FROM app.tasks AS t
INNER JOIN app.projects AS p ON t.project_id = p.id
WHERE
    t.id = :id
    AND t.deleted_at IS NOT NULL
    AND p.deleted_at IS NULL
    AND (SELECT app.act_as(:as_user));

-- name: soft_delete_tasks(ids, as_user, actor)
-- Mark every task in ids deleted, all or nothing: only when each id is a
-- live task of a live, unarchived project that as_user owns; one
-- task.soft_delete audit event per task; return the deleted rows by id
-- (none if any id does not qualify).
-- With 1,000 projects (the default `vdata explain` seed) the planner hashes
-- them all, rightly: cheaper than one probe per id. From 10,000
-- (`vdata explain --scale 1`) it probes pk_projects per task.
-- seqscan-ok: only while projects are few (hashing them all is then cheapest)
WITH old AS (
    SELECT t.*
    FROM app.tasks AS t
    WHERE
        t.id = any(:ids::uuid[])
        AND t.deleted_at IS NULL
        AND EXISTS (
            SELECT p.id
            FROM app.projects AS p
            WHERE
                p.id = t.project_id
                AND p.deleted_at IS NULL
                AND p.archived_at IS NULL
                AND p.owner_id = :as_user
        )
    ORDER BY t.id  -- one lock order for every bulk writer: no deadlocks
    FOR UPDATE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        deleted_at = now(),
        deleted_by = :actor,
        updated_by = :actor
    FROM old AS o
    WHERE
        t.id = o.id
        AND (SELECT count(*) FROM old) = cardinality(:ids::uuid[])
    RETURNING
        t.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'task.soft_delete' AS action,
        'task' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.project_id,
    c.title,
    c.description,
    c.status,
    c.priority,
    c.assignee_id,
    c.due_at,
    c.completed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c
WHERE (SELECT app.act_as(:as_user))
ORDER BY c.id;

-- name: restore_tasks(ids, as_user, actor)
-- Undo the soft delete of every task in ids, all or nothing: only when each
-- id is a soft-deleted task of a live, unarchived project that as_user
-- owns; one task.restore audit event per task; return the restored rows by
-- id (none if any id does not qualify).
-- With 1,000 projects (the default `vdata explain` seed) the planner hashes
-- them all, rightly: cheaper than one probe per id. From 10,000
-- (`vdata explain --scale 1`) it probes pk_projects per task.
-- seqscan-ok: only while projects are few (hashing them all is then cheapest)
WITH old AS (
    SELECT t.*
    FROM app.tasks AS t
    WHERE
        t.id = any(:ids::uuid[])
        AND t.deleted_at IS NOT NULL
        AND EXISTS (
            SELECT p.id
            FROM app.projects AS p
            WHERE
                p.id = t.project_id
                AND p.deleted_at IS NULL
                AND p.archived_at IS NULL
                AND p.owner_id = :as_user
        )
    ORDER BY t.id  -- one lock order for every bulk writer: no deadlocks
    FOR UPDATE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        deleted_at = NULL,
        deleted_by = NULL,
        updated_by = :actor
    FROM old AS o
    WHERE
        t.id = o.id
        AND (SELECT count(*) FROM old) = cardinality(:ids::uuid[])
    RETURNING
        t.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'task.restore' AS action,
        'task' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.project_id,
    c.title,
    c.description,
    c.status,
    c.priority,
    c.assignee_id,
    c.due_at,
    c.completed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c
WHERE (SELECT app.act_as(:as_user))
ORDER BY c.id;

-- name: update_tasks_assignee(ids, as_user, assignee_id, actor)
-- Assign every task in ids to assignee_id (null: unassign), all or nothing:
-- only when each id is a live task of a live, unarchived project that
-- as_user owns and the assignee is a live, active user (share-locked, so a
-- concurrent deactivation waits); one task.assign audit event per task;
-- return the changed rows by id (none if anything does not qualify).
-- With 1,000 projects (the default `vdata explain` seed) the planner hashes
-- them all, rightly: cheaper than one probe per id. From 10,000
-- (`vdata explain --scale 1`) it probes pk_projects per task.
-- seqscan-ok: only while projects are few (hashing them all is then cheapest)
WITH old AS (
    SELECT t.*
    FROM app.tasks AS t
    WHERE
        t.id = any(:ids::uuid[])
        AND t.deleted_at IS NULL
        AND EXISTS (
            SELECT p.id
            FROM app.projects AS p
            WHERE
                p.id = t.project_id
                AND p.deleted_at IS NULL
                AND p.archived_at IS NULL
                AND p.owner_id = :as_user
        )
    ORDER BY t.id  -- one lock order for every bulk writer: no deadlocks
    FOR UPDATE
),

assignee AS (
    SELECT u.id
    FROM app.users AS u
    WHERE
        u.id = :assignee_id::uuid
        AND u.is_active
        AND u.deleted_at IS NULL
    FOR SHARE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        assignee_id = :assignee_id::uuid,
        updated_by = :actor
    FROM old AS o
    WHERE
        t.id = o.id
        AND (SELECT count(*) FROM old) = cardinality(:ids::uuid[])
        AND (:assignee_id::uuid IS NULL OR EXISTS (SELECT a.id FROM assignee AS a))
    RETURNING
        t.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'task.assign' AS action,
        'task' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.project_id,
    c.title,
    c.description,
    c.status,
    c.priority,
    c.assignee_id,
    c.due_at,
    c.completed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c
WHERE (SELECT app.act_as(:as_user))
ORDER BY c.id;
