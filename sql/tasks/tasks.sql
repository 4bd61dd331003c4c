-- Tasks. Visibility, the same in every read: a live task of a live project
-- that the user owns or that is public, or a task assigned to the user.
-- Writes need a live, unarchived project; update and status changes are for
-- the project owner or the task's assignee, the rest for the owner only.
-- Each rule is one correlated EXISTS on the task's project (a pk_projects
-- probe per task), never `project_id IN (SELECT ... FROM app.projects)`,
-- which reads every project on each call.
-- Reads are here; writes (each with its audit event in the same statement)
-- are in task_writes.sql, the same aiosql namespace.
-- `-- noqa: PRS` on OFFSET: see sql/users/users.sql.
-- sqlfluff:templater:placeholder:as_user:0
-- sqlfluff:templater:placeholder:assignee_id:0
-- (For the linter only: render these parameters as literals, so that RF02
-- does not take them for unqualified columns of a correlated subquery.)

-- name: get_task_by_id(id, as_user)^
-- Return the task id if as_user may see it, else nothing.
SELECT
    t.id,
    t.project_id,
    t.title,
    t.description,
    t.status,
    t.priority,
    t.assignee_id,
    t.due_at,
    t.completed_at,
    t.created_at,
    t.created_by,
    t.updated_at,
    t.updated_by,
    t.version,
    t.deleted_at,
    t.deleted_by
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
            AND (p.owner_id = :as_user OR p.is_public OR t.assignee_id = :as_user)
    )
    AND (SELECT app.act_as(:as_user));

-- name: get_task_access(id, as_user)^
-- Return what as_user may do with the live task id (its version and status;
-- archived, owner, writable, visible), or nothing if it or its project is
-- deleted; used to explain why a write touched no row.
-- not-null: archived, is_owner, can_write, visible
WITH task AS (
    SELECT
        t.project_id,
        t.version,
        t.status,
        coalesce(t.assignee_id = :as_user, FALSE) AS assigned
    FROM app.tasks AS t
    WHERE
        t.id = :id
        AND t.deleted_at IS NULL
),

project AS (
    SELECT
        p.id,
        p.is_public,
        p.archived_at IS NOT NULL AS archived,
        p.owner_id = :as_user AS is_owner
    FROM app.projects AS p
    WHERE
        p.id = (SELECT tk.project_id FROM task AS tk)
        AND p.deleted_at IS NULL
)

SELECT
    tk.version,
    tk.status,
    pr.archived,
    pr.is_owner,
    pr.is_owner OR tk.assigned AS can_write,
    pr.is_owner OR pr.is_public OR tk.assigned AS visible
FROM task AS tk
INNER JOIN project AS pr ON tk.project_id = pr.id
WHERE (SELECT app.act_as(:as_user));

-- name: get_user_is_active(id)$
-- Return true if id is a live, active user (an assignee must be one).
SELECT count(*) = 1 AS is_active
FROM app.users AS u
WHERE
    u.id = :id
    AND u.is_active
    AND u.deleted_at IS NULL;

-- name: list_tasks_by_project(project_id, as_user, status, after_at, after_id, page_size)
-- Return up to page_size tasks of one project that as_user may see (status
-- null: any), oldest first, after the keyset position (after_at, after_id).
SELECT
    t.id,
    t.project_id,
    t.title,
    t.description,
    t.status,
    t.priority,
    t.assignee_id,
    t.due_at,
    t.completed_at,
    t.created_at,
    t.created_by,
    t.updated_at,
    t.updated_by,
    t.version,
    t.deleted_at,
    t.deleted_by
FROM app.tasks AS t
WHERE
    t.project_id = :project_id
    AND t.deleted_at IS NULL
    AND (:status::text IS NULL OR t.status = :status::text)
    AND (
        :after_at::timestamptz IS NULL
        OR (t.created_at, t.id) > (:after_at::timestamptz, :after_id::uuid)
    )
    AND EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = t.project_id
            AND p.deleted_at IS NULL
            AND (p.owner_id = :as_user OR p.is_public OR t.assignee_id = :as_user)
    )
    AND (SELECT app.act_as(:as_user))
ORDER BY t.created_at, t.id
LIMIT :page_size;

-- name: list_tasks_by_assignee(assignee_id, as_user, status, after_at, after_id, page_size)
-- Return up to page_size tasks assigned to assignee_id that as_user may see
-- (status null: any), oldest first, after the keyset position.
SELECT
    t.id,
    t.project_id,
    t.title,
    t.description,
    t.status,
    t.priority,
    t.assignee_id,
    t.due_at,
    t.completed_at,
    t.created_at,
    t.created_by,
    t.updated_at,
    t.updated_by,
    t.version,
    t.deleted_at,
    t.deleted_by
FROM app.tasks AS t
WHERE
    t.assignee_id = :assignee_id
    AND t.deleted_at IS NULL
    AND (:status::text IS NULL OR t.status = :status::text)
    AND (
        :after_at::timestamptz IS NULL
        OR (t.created_at, t.id) > (:after_at::timestamptz, :after_id::uuid)
    )
    AND EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = t.project_id
            AND p.deleted_at IS NULL
            AND (p.owner_id = :as_user OR p.is_public OR t.assignee_id = :as_user)
    )
    AND (SELECT app.act_as(:as_user))
ORDER BY t.created_at, t.id
LIMIT :page_size;

-- name: list_tasks_by_status(status, as_user, after_at, after_id, page_size)
-- Return up to page_size tasks in status that as_user may see, across
-- projects, oldest first, after the keyset position.
SELECT
    t.id,
    t.project_id,
    t.title,
    t.description,
    t.status,
    t.priority,
    t.assignee_id,
    t.due_at,
    t.completed_at,
    t.created_at,
    t.created_by,
    t.updated_at,
    t.updated_by,
    t.version,
    t.deleted_at,
    t.deleted_by
FROM app.tasks AS t
WHERE
    t.status = :status
    AND t.deleted_at IS NULL
    AND (
        :after_at::timestamptz IS NULL
        OR (t.created_at, t.id) > (:after_at::timestamptz, :after_id::uuid)
    )
    AND EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = t.project_id
            AND p.deleted_at IS NULL
            AND (p.owner_id = :as_user OR p.is_public OR t.assignee_id = :as_user)
    )
    AND (SELECT app.act_as(:as_user))
ORDER BY t.created_at, t.id
LIMIT :page_size;

-- name: list_tasks_overdue(as_user, project_id, page_size)
-- Return up to page_size open (not done or cancelled) tasks that as_user may
-- see whose due_at has passed (project_id null: any project), most overdue
-- first.
-- With 1,000 projects (the default `vdata explain` seed) the planner hashes
-- them all, rightly: cheaper than one probe per overdue task. From 10,000
-- (`vdata explain --scale 1`) it walks index_tasks_on_due_at and probes
-- pk_projects per task, as get_task_by_id does.
-- seqscan-ok: only while projects are few (hashing them all is then cheapest)
SELECT
    t.id,
    t.project_id,
    t.title,
    t.description,
    t.status,
    t.priority,
    t.assignee_id,
    t.due_at,
    t.completed_at,
    t.created_at,
    t.created_by,
    t.updated_at,
    t.updated_by,
    t.version,
    t.deleted_at,
    t.deleted_by
FROM app.tasks AS t
WHERE
    t.due_at < now()
    AND t.status NOT IN ('done', 'cancelled')
    AND t.deleted_at IS NULL
    AND (:project_id::uuid IS NULL OR t.project_id = :project_id::uuid)
    AND EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = t.project_id
            AND p.deleted_at IS NULL
            AND (p.owner_id = :as_user OR p.is_public OR t.assignee_id = :as_user)
    )
    AND (SELECT app.act_as(:as_user))
ORDER BY t.due_at, t.id
LIMIT :page_size;

-- name: list_tasks_due_soon(as_user, project_id, within, page_size)
-- Return up to page_size open tasks that as_user may see due from now to
-- now + within (an interval), soonest first.
SELECT
    t.id,
    t.project_id,
    t.title,
    t.description,
    t.status,
    t.priority,
    t.assignee_id,
    t.due_at,
    t.completed_at,
    t.created_at,
    t.created_by,
    t.updated_at,
    t.updated_by,
    t.version,
    t.deleted_at,
    t.deleted_by
FROM app.tasks AS t
WHERE
    t.due_at >= now()
    AND t.due_at < now() + :within::interval
    AND t.status NOT IN ('done', 'cancelled')
    AND t.deleted_at IS NULL
    AND (:project_id::uuid IS NULL OR t.project_id = :project_id::uuid)
    AND EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = t.project_id
            AND p.deleted_at IS NULL
            AND (p.owner_id = :as_user OR p.is_public OR t.assignee_id = :as_user)
    )
    AND (SELECT app.act_as(:as_user))
ORDER BY t.due_at, t.id
LIMIT :page_size;

-- name: get_status_transition_allowed(from_status, to_status)$
-- Return true if a task may move from from_status to to_status (the rule
-- the status UPDATEs enforce); used to explain a refused change.
SELECT app.task_status_transition_allowed(:from_status, :to_status) AS allowed;
