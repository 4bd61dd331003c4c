-- Tasks, filtered listings: one static statement per listing, every
-- optional filter a typed parameter that is null when unused, lists as
-- `= any(array)`, ranges half-open [from, to). No SQL is assembled at run
-- time.
--
-- Plans. PostgreSQL plans a prepared statement for its parameters (custom
-- plans) for the first five runs, then may switch to one generic plan that
-- must serve any parameters. A `(:x IS NULL OR col >= :x)` filter is folded
-- away in a custom plan but stays a run-time filter in the generic one, so
-- it can never be an index condition there. Each statement therefore has
-- one required condition that is an index condition in every plan: the
-- projects to list, `project_id = any(:project_ids)` on
-- index_tasks_on_project_id_and_status. The optional filters narrow the
-- rows that index finds; a listing reads at most the tasks of the projects
-- named, whichever plan runs.
-- sqlfluff:templater:placeholder:as_user:0
-- (For the linter only: render this parameter as a literal, so that RF02
-- does not take it for an unqualified column of a correlated subquery.)
-- sqlfluff:rules:layout.long_lines:ignore_comment_lines:True
-- (aiosql reads a query's name and parameters from one line: a long
-- parameter list cannot wrap.)

-- name: list_tasks_matching(project_ids, statuses, assignee_ids, priority_min, priority_max, created_from, created_to, updated_from, updated_to, due_from, due_to, as_user, offset, page_size)
-- Return one offset page, oldest first (created_at, id), of the live tasks
-- in project_ids that as_user may see and that match every filter given:
-- statuses and assignee_ids (membership), priority_min/max (inclusive),
-- created/updated/due ranges [from, to). Null filters match everything.
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
    t.project_id = any(:project_ids::uuid[])
    AND t.deleted_at IS NULL
    AND (:statuses::text[] IS NULL OR t.status = any(:statuses::text[]))
    AND (:assignee_ids::uuid[] IS NULL OR t.assignee_id = any(:assignee_ids::uuid[]))
    AND (:priority_min::integer IS NULL OR t.priority >= :priority_min::integer)
    AND (:priority_max::integer IS NULL OR t.priority <= :priority_max::integer)
    AND (:created_from::timestamptz IS NULL OR t.created_at >= :created_from::timestamptz)
    AND (:created_to::timestamptz IS NULL OR t.created_at < :created_to::timestamptz)
    AND (:updated_from::timestamptz IS NULL OR t.updated_at >= :updated_from::timestamptz)
    AND (:updated_to::timestamptz IS NULL OR t.updated_at < :updated_to::timestamptz)
    AND (:due_from::timestamptz IS NULL OR t.due_at >= :due_from::timestamptz)
    AND (:due_to::timestamptz IS NULL OR t.due_at < :due_to::timestamptz)
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
LIMIT :page_size
OFFSET :offset; -- noqa: PRS

-- name: count_tasks_matching(project_ids, statuses, assignee_ids, priority_min, priority_max, created_from, created_to, updated_from, updated_to, due_from, due_to, as_user)$
-- Return how many tasks list_tasks_matching matches over all pages.
SELECT count(*) AS total
FROM app.tasks AS t
WHERE
    t.project_id = any(:project_ids::uuid[])
    AND t.deleted_at IS NULL
    AND (:statuses::text[] IS NULL OR t.status = any(:statuses::text[]))
    AND (:assignee_ids::uuid[] IS NULL OR t.assignee_id = any(:assignee_ids::uuid[]))
    AND (:priority_min::integer IS NULL OR t.priority >= :priority_min::integer)
    AND (:priority_max::integer IS NULL OR t.priority <= :priority_max::integer)
    AND (:created_from::timestamptz IS NULL OR t.created_at >= :created_from::timestamptz)
    AND (:created_to::timestamptz IS NULL OR t.created_at < :created_to::timestamptz)
    AND (:updated_from::timestamptz IS NULL OR t.updated_at >= :updated_from::timestamptz)
    AND (:updated_to::timestamptz IS NULL OR t.updated_at < :updated_to::timestamptz)
    AND (:due_from::timestamptz IS NULL OR t.due_at >= :due_from::timestamptz)
    AND (:due_to::timestamptz IS NULL OR t.due_at < :due_to::timestamptz)
    AND EXISTS (
        SELECT p.id
        FROM app.projects AS p
        WHERE
            p.id = t.project_id
            AND p.deleted_at IS NULL
            AND (p.owner_id = :as_user OR p.is_public OR t.assignee_id = :as_user)
    )
    AND (SELECT app.act_as(:as_user));

-- name: list_tasks_matching_after(project_ids, statuses, assignee_ids, priority_min, priority_max, created_from, created_to, updated_from, updated_to, due_from, due_to, as_user, after_at, after_id, page_size)
-- Return up to page_size tasks as list_tasks_matching selects them, oldest
-- first, after the keyset position (after_at, after_id); a null position
-- starts at the beginning.
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
    t.project_id = any(:project_ids::uuid[])
    AND t.deleted_at IS NULL
    AND (:statuses::text[] IS NULL OR t.status = any(:statuses::text[]))
    AND (:assignee_ids::uuid[] IS NULL OR t.assignee_id = any(:assignee_ids::uuid[]))
    AND (:priority_min::integer IS NULL OR t.priority >= :priority_min::integer)
    AND (:priority_max::integer IS NULL OR t.priority <= :priority_max::integer)
    AND (:created_from::timestamptz IS NULL OR t.created_at >= :created_from::timestamptz)
    AND (:created_to::timestamptz IS NULL OR t.created_at < :created_to::timestamptz)
    AND (:updated_from::timestamptz IS NULL OR t.updated_at >= :updated_from::timestamptz)
    AND (:updated_to::timestamptz IS NULL OR t.updated_at < :updated_to::timestamptz)
    AND (:due_from::timestamptz IS NULL OR t.due_at >= :due_from::timestamptz)
    AND (:due_to::timestamptz IS NULL OR t.due_at < :due_to::timestamptz)
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
