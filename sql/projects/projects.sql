-- Visibility rule, the same in every query: a live project (deleted_at IS
-- NULL) that the user owns or that is public. Writes need the owner and,
-- except archive/unarchive/soft delete, a project that is not archived.
-- Soft delete and restore (its undo) are in project_lifecycle.sql.

-- name: insert_project(owner_id, name, description, is_public, actor)^
-- Create a project owned by the active user owner_id, with its audit event,
-- and return it; nothing when the owner is not an active user.
-- unique_projects_owner_id_and_name -> ConflictError;
-- check_projects_name_length / check_projects_description_length -> ValidationError.
WITH created AS (
    INSERT INTO app.projects (owner_id, name, description, is_public, created_by, updated_by)
    SELECT
        u.id AS owner_id,
        :name,
        :description,
        :is_public,
        :actor AS created_by,
        :actor AS updated_by
    FROM app.users AS u
    WHERE
        u.id = :owner_id
        AND u.is_active
        AND u.deleted_at IS NULL
    RETURNING *
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after)
    SELECT
        :actor,
        'project.create' AS action,
        'project' AS entity_type,
        c.id::text AS entity_id,
        to_jsonb(c) AS after
    FROM created AS c
)

SELECT
    c.id,
    c.owner_id,
    c.name,
    c.description,
    c.is_public,
    c.archived_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM created AS c
WHERE (SELECT app.act_as(:owner_id));

-- name: get_project_by_id(id, as_user)^
-- Return the live project id if as_user owns it or it is public, else nothing.
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
WHERE
    p.id = :id
    AND p.deleted_at IS NULL
    AND (p.owner_id = :as_user OR p.is_public)
    AND (SELECT app.act_as(:as_user));

-- name: get_project_access(id, as_user)^
-- Return what as_user may do with the live project id (visible, owner,
-- archived, version), or nothing if it is deleted or absent; used to explain
-- why a write touched no row.
-- not-null: archived, is_owner, visible
SELECT
    p.version,
    p.archived_at IS NOT NULL AS archived,
    p.owner_id = :as_user AS is_owner,
    p.owner_id = :as_user OR p.is_public AS visible
FROM app.projects AS p
WHERE
    p.id = :id
    AND p.deleted_at IS NULL
    AND (SELECT app.act_as(:as_user));

-- name: list_projects_visible(as_user, search, owned_only, archived, offset, page_size)
-- Return one offset page of the projects as_user may see, by name then id;
-- search matches a case-insensitive substring of the name.
-- Visible is owned, or public (unless owned_only): two disjoint branches, so
-- each has its index (index_projects_on_owner_id; the public, live projects'
-- index_projects_on_name_and_id, already in page order) instead of one
-- OR that reads every project.
-- not-null: id, owner_id, name, description, is_public, created_at, created_by
-- not-null: updated_at, updated_by, version
SELECT
    v.id,
    v.owner_id,
    v.name,
    v.description,
    v.is_public,
    v.archived_at,
    v.created_at,
    v.created_by,
    v.updated_at,
    v.updated_by,
    v.version,
    v.deleted_at,
    v.deleted_by
FROM (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.owner_id = :as_user
        AND p.deleted_at IS NULL
        AND (:archived OR p.archived_at IS NULL)
        AND (:search::text IS NULL OR strpos(lower(p.name), lower(:search::text)) > 0)
    UNION ALL
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.is_public
        AND NOT :owned_only
        AND p.owner_id IS DISTINCT FROM :as_user
        AND p.deleted_at IS NULL
        AND (:archived OR p.archived_at IS NULL)
        AND (:search::text IS NULL OR strpos(lower(p.name), lower(:search::text)) > 0)
) AS v
WHERE (SELECT app.act_as(:as_user))
ORDER BY v.name, v.id
LIMIT :page_size
OFFSET :offset; -- noqa: PRS

-- name: count_projects_visible(as_user, search, owned_only, archived)$
-- Return how many projects list_projects_visible would list over all pages
-- (its two branches, counted apart).
SELECT count(*) AS total
FROM (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.owner_id = :as_user
        AND p.deleted_at IS NULL
        AND (:archived OR p.archived_at IS NULL)
        AND (:search::text IS NULL OR strpos(lower(p.name), lower(:search::text)) > 0)
    UNION ALL
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.is_public
        AND NOT :owned_only
        AND p.owner_id IS DISTINCT FROM :as_user
        AND p.deleted_at IS NULL
        AND (:archived OR p.archived_at IS NULL)
        AND (:search::text IS NULL OR strpos(lower(p.name), lower(:search::text)) > 0)
) AS v
WHERE (SELECT app.act_as(:as_user));

-- name: list_projects_after(as_user, search, owned_only, archived, after_name, after_id, page_size)
-- Return up to page_size projects as_user may see, by name then id, after
-- the keyset position (after_name, after_id); filters and branches as
-- list_projects_visible.
-- not-null: id, owner_id, name, description, is_public, created_at, created_by
-- not-null: updated_at, updated_by, version
SELECT
    v.id,
    v.owner_id,
    v.name,
    v.description,
    v.is_public,
    v.archived_at,
    v.created_at,
    v.created_by,
    v.updated_at,
    v.updated_by,
    v.version,
    v.deleted_at,
    v.deleted_by
FROM (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.owner_id = :as_user
        AND p.deleted_at IS NULL
        AND (:archived OR p.archived_at IS NULL)
        AND (:search::text IS NULL OR strpos(lower(p.name), lower(:search::text)) > 0)
        AND (:after_name::text IS NULL OR (p.name, p.id) > (:after_name::text, :after_id::uuid))
    UNION ALL
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.is_public
        AND NOT :owned_only
        AND p.owner_id IS DISTINCT FROM :as_user
        AND p.deleted_at IS NULL
        AND (:archived OR p.archived_at IS NULL)
        AND (:search::text IS NULL OR strpos(lower(p.name), lower(:search::text)) > 0)
        AND (:after_name::text IS NULL OR (p.name, p.id) > (:after_name::text, :after_id::uuid))
) AS v
WHERE (SELECT app.act_as(:as_user))
ORDER BY v.name, v.id
LIMIT :page_size;

-- name: update_project(id, as_user, expected_version, name, description, is_public, actor)^
-- Change the given fields (null: keep) of a live, unarchived project that
-- as_user owns, at expected_version, with its audit event; return the new
-- row, or nothing (see get_project_access for why).
-- unique_projects_owner_id_and_name -> ConflictError.
WITH old AS (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.id = :id
        AND p.owner_id = :as_user
        AND p.deleted_at IS NULL
        AND p.archived_at IS NULL
    FOR UPDATE
),

changed AS (
    UPDATE app.projects AS p
    SET
        name = coalesce(:name::text, p.name),
        description = coalesce(:description::text, p.description),
        is_public = coalesce(:is_public::boolean, p.is_public),
        updated_by = :actor
    FROM old AS o
    WHERE
        p.id = o.id
        AND o.version = :expected_version
    RETURNING
        p.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'project.update' AS action,
        'project' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.owner_id,
    c.name,
    c.description,
    c.is_public,
    c.archived_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c
WHERE (SELECT app.act_as(:as_user));

-- name: update_project_archived(id, as_user, archive, actor)^
-- Archive (archive true) a live unarchived project, or unarchive (false) an
-- archived one, that as_user owns, with its audit event (project.archive,
-- project.unarchive); return the new row, or nothing.
WITH old AS (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.id = :id
        AND p.owner_id = :as_user
        AND p.deleted_at IS NULL
        AND (p.archived_at IS NULL) = :archive
    FOR UPDATE
),

changed AS (
    UPDATE app.projects AS p
    SET
        archived_at = CASE WHEN :archive THEN now() END,
        updated_by = :actor
    FROM old AS o
    WHERE p.id = o.id
    RETURNING
        p.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        CASE WHEN :archive THEN 'project.archive' ELSE 'project.unarchive' END AS action,
        'project' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.owner_id,
    c.name,
    c.description,
    c.is_public,
    c.archived_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c
WHERE (SELECT app.act_as(:as_user));

-- name: get_project_stats(id, as_user)^
-- Return task counts per status, the completion rate (done over all but
-- cancelled) and the overdue count of a project as_user may see, in one
-- query; nothing if the project is not visible.
-- not-null: project_id, total, todo, in_progress, blocked, done
-- not-null: cancelled, completion_rate, overdue
WITH project AS (
    SELECT p.id
    FROM app.projects AS p
    WHERE
        p.id = :id
        AND p.deleted_at IS NULL
        AND (p.owner_id = :as_user OR p.is_public)
)

SELECT
    pr.id AS project_id,
    count(t.id) AS total,
    count(t.id) FILTER (WHERE t.status = 'todo') AS todo,
    count(t.id) FILTER (WHERE t.status = 'in_progress') AS in_progress,
    count(t.id) FILTER (WHERE t.status = 'blocked') AS blocked,
    count(t.id) FILTER (WHERE t.status = 'done') AS done,
    count(t.id) FILTER (WHERE t.status = 'cancelled') AS cancelled,
    coalesce(
        count(t.id) FILTER (WHERE t.status = 'done')::float8
        / nullif(count(t.id) FILTER (WHERE t.status != 'cancelled'), 0),
        0.0
    ) AS completion_rate,
    count(t.id) FILTER (
        WHERE t.due_at < now() AND t.status NOT IN ('done', 'cancelled')
    ) AS overdue
FROM project AS pr
LEFT JOIN app.tasks AS t
    ON
        pr.id = t.project_id
        AND t.deleted_at IS NULL
WHERE (SELECT app.act_as(:as_user))
GROUP BY pr.id;
