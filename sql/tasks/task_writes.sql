-- Tasks, write side: every statement records its audit event in the same
-- statement (a data-modifying CTE into app.audit_log). The visibility and
-- write rules are described at the top of tasks.sql. Soft delete, restore
-- and bulk assignment are in task_lifecycle.sql.
-- sqlfluff:templater:placeholder:as_user:0
-- sqlfluff:templater:placeholder:assignee_id:0
-- (For the linter only: render these parameters as literals, so that RF02
-- does not take them for unqualified columns of a correlated subquery.)

-- name: insert_task(project_id, as_user, title, description, priority, assignee_id, due_at, actor)^
-- Create a task in a live, unarchived project that as_user owns, checked and
-- share-locked in this same statement (so a concurrent archive or delete
-- cannot slip in between), with its audit event; nothing when the project
-- or the assignee (must be an active user) does not qualify.
-- check_tasks_title_length / check_tasks_priority_range -> ValidationError.
WITH project AS (
    SELECT p.id
    FROM app.projects AS p
    WHERE
        p.id = :project_id
        AND p.owner_id = :as_user
        AND p.deleted_at IS NULL
        AND p.archived_at IS NULL
        AND (
            :assignee_id::uuid IS NULL
            OR EXISTS (
                SELECT u.id
                FROM app.users AS u
                WHERE
                    u.id = :assignee_id::uuid
                    AND u.is_active
                    AND u.deleted_at IS NULL
                FOR SHARE
            )
        )
    FOR SHARE
),

created AS (
    INSERT INTO app.tasks (
        project_id,
        title,
        description,
        priority,
        assignee_id,
        due_at,
        created_by,
        updated_by
    )
    SELECT
        pr.id AS project_id,
        :title,
        :description,
        :priority,
        :assignee_id::uuid AS assignee_id,
        :due_at::timestamptz AS due_at,
        :actor AS created_by,
        :actor AS updated_by
    FROM project AS pr
    RETURNING *
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after)
    SELECT
        :actor,
        'task.create' AS action,
        'task' AS entity_type,
        c.id::text AS entity_id,
        to_jsonb(c) AS after
    FROM created AS c
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
FROM created AS c
WHERE (SELECT app.act_as(:as_user));

-- name: update_task(id, as_user, version, title, description, priority, set_due_at, due_at, actor)^
-- Change the given fields (null: keep; due_at is set, even to null, only
-- when set_due_at) of a task as_user may write, at version, with its
-- audit event; return the new row, or nothing (see get_task_access).
-- check_tasks_title_length / check_tasks_priority_range -> ValidationError.
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
                AND (p.owner_id = :as_user OR t.assignee_id = :as_user)
        )
        AND t.version = :version
    FOR UPDATE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        title = coalesce(:title::text, t.title),
        description = coalesce(:description::text, t.description),
        priority = coalesce(:priority::integer, t.priority),
        due_at = CASE WHEN :set_due_at THEN :due_at::timestamptz ELSE t.due_at END,
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
        'task.update' AS action,
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

-- name: update_task_assignee(id, as_user, assignee_id, actor)^
-- Assign a task (assignee_id null: unassign) in a project as_user owns to a
-- live, active user (share-locked here, so a concurrent deactivation waits),
-- with its audit event; return the new row, or nothing.
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
        AND (
            :assignee_id::uuid IS NULL
            OR EXISTS (
                SELECT u.id
                FROM app.users AS u
                WHERE
                    u.id = :assignee_id::uuid
                    AND u.is_active
                    AND u.deleted_at IS NULL
                FOR SHARE
            )
        )
    FOR UPDATE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        assignee_id = :assignee_id::uuid,
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
WHERE (SELECT app.act_as(:as_user));

-- name: update_task_status(id, as_user, status, version, actor)^
-- Move a task as_user may write to status if
-- app.task_status_transition_allowed says so (and, unless version is
-- null, at that version), setting completed_at on done and clearing it
-- otherwise, with its audit event; return the new row, or nothing.
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
                AND (p.owner_id = :as_user OR t.assignee_id = :as_user)
        )
        AND app.task_status_transition_allowed(t.status, :status)
        AND (:version::integer IS NULL OR t.version = :version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        status = :status,
        completed_at = CASE WHEN :status = 'done' THEN now() END,
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
        'task.status' AS action,
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

-- name: update_tasks_status(ids, as_user, status, actor)
-- Move every task in ids to status, all or nothing: only when each id is a
-- task as_user may write and each transition is allowed; one audit event per
-- task; return the changed rows (none if any id does not qualify). Rows are
-- locked in id order, so concurrent bulk changes queue instead of deadlocking.
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
                AND (p.owner_id = :as_user OR t.assignee_id = :as_user)
        )
    ORDER BY t.id  -- one lock order for every bulk writer: no deadlocks
    FOR UPDATE
),

changed AS (
    UPDATE app.tasks AS t
    SET
        status = :status,
        completed_at = CASE WHEN :status = 'done' THEN now() END,
        updated_by = :actor
    FROM old AS o
    WHERE
        t.id = o.id
        -- Uncorrelated subqueries: each runs once (an InitPlan). Joined as a
        -- one-row CTE, the count was re-read for every row (quadratic).
        AND (SELECT count(*) FROM old) = cardinality(:ids::uuid[])
        AND NOT EXISTS (
            SELECT x.id
            FROM old AS x
            WHERE NOT app.task_status_transition_allowed(x.status, :status)
        )
    RETURNING
        t.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'task.status' AS action,
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

-- name: lock_project_for_new_tasks(project_id, as_user)$
-- Share-lock a live, unarchived project that as_user owns for the rest of
-- the transaction (bulk create via COPY) and return its id, or nothing.
SELECT p.id
FROM app.projects AS p
WHERE
    p.id = :project_id
    AND p.owner_id = :as_user
    AND p.deleted_at IS NULL
    AND p.archived_at IS NULL
    AND (SELECT app.act_as(:as_user))
FOR SHARE;

-- name: count_active_users_locked(ids)$
-- Share-lock the live, active users among ids for the rest of the
-- transaction and return how many there are.
SELECT count(*) AS active_users
FROM (
    SELECT u.id
    FROM app.users AS u
    WHERE
        u.id = any(:ids::uuid[])
        AND u.is_active
        AND u.deleted_at IS NULL
    FOR SHARE
) AS active_ids;

-- name: insert_tasks(ids, project_id, as_user, titles, texts, priorities, assignees, dues, actor)
-- Create one task per element of the parallel arrays (texts: descriptions;
-- assignees: assignee ids or nulls), ids ascending, in a
-- project the caller has share-locked and checked in this transaction
-- (lock_project_for_new_tasks), with one task.create event each (in id
-- order); return the tasks in id order. One INSERT from unnest, not COPY:
-- COPY FROM is refused on a table with row-level security, and the tasks
-- insert policy checks again that as_user owns the project.
-- check_tasks_title_length / check_tasks_priority_range -> ValidationError;
-- a task the insert policy refuses -> PermissionDeniedError (42501).
WITH created AS (
    INSERT INTO app.tasks (
        id,
        project_id,
        title,
        description,
        priority,
        assignee_id,
        due_at,
        created_by,
        updated_by
    )
    SELECT
        n.id,
        :project_id::uuid AS project_id,
        n.title,
        n.description,
        n.priority,
        n.assignee_id,
        n.due_at,
        :actor AS created_by,
        :actor AS updated_by
    FROM
        unnest(
            :ids::uuid[],
            :titles::text[],
            :texts::text[],
            :priorities::integer[],
            :assignees::uuid[],
            :dues::timestamptz[]
        ) AS n (id, title, description, priority, assignee_id, due_at)
    ORDER BY n.id
    RETURNING *
),

audited AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after)
    SELECT
        :actor,
        'task.create' AS action,
        'task' AS entity_type,
        c.id::text AS entity_id,
        to_jsonb(c) AS after
    FROM created AS c
    ORDER BY c.id
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
FROM created AS c
WHERE (SELECT app.act_as(:as_user))
ORDER BY c.id;
