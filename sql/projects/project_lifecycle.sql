-- Projects: soft delete and restore (its undo), one project or many. Only
-- the owner may do either; a soft-deleted project is invisible to everyone
-- else (NotFoundError), as in every read. Restore brings the project back
-- as it was (archived or not), with its tasks: tasks deleted on their own
-- stay deleted. Names are unique per owner among live projects only
-- (unique_projects_owner_id_and_name is partial), so a restore whose name a
-- live project took meanwhile fails with ConflictError and changes nothing.

-- name: soft_delete_project(id, as_user, expected_version, actor)^
-- Mark a live project that as_user owns deleted (archived or not), at
-- expected_version unless it is null, with its project.soft_delete audit
-- event; return the deleted row, or nothing (see get_project_access). Its
-- tasks become invisible with it.
WITH old AS (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.id = :id
        AND p.owner_id = :as_user
        AND p.deleted_at IS NULL
        AND (:expected_version::integer IS NULL OR p.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.projects AS p
    SET
        deleted_at = now(),
        deleted_by = :actor,
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
        'project.soft_delete' AS action,
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

-- name: restore_project(id, as_user, expected_version, actor)^
-- Undo the soft delete of a project that as_user owns, at expected_version
-- unless it is null, with its project.restore audit event; return the
-- restored row, or nothing (see get_deleted_project_access).
-- unique_projects_owner_id_and_name -> ConflictError (a live project of the
-- owner has the name now).
WITH old AS (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.id = :id
        AND p.owner_id = :as_user
        AND p.deleted_at IS NOT NULL
        AND (:expected_version::integer IS NULL OR p.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.projects AS p
    SET
        deleted_at = NULL,
        deleted_by = NULL,
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
        'project.restore' AS action,
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

-- name: get_deleted_project_version(id, as_user)$
-- Return the version of the soft-deleted project id if as_user owns it, or
-- nothing (nobody else may know it exists); used to explain why a restore
-- touched no row.
SELECT p.version
FROM app.projects AS p
WHERE
    p.id = :id
    AND p.owner_id = :as_user
    AND p.deleted_at IS NOT NULL
    AND (SELECT app.act_as(:as_user));

-- name: soft_delete_projects(ids, as_user, actor)
-- Mark every project in ids deleted, all or nothing: only when each id is a
-- live project that as_user owns; one project.soft_delete audit event per
-- project; return the deleted rows (none if any id does not qualify). Rows
-- are locked in id order, so concurrent bulk writers queue instead of
-- deadlocking.
WITH old AS (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.id = any(:ids::uuid[])
        AND p.owner_id = :as_user
        AND p.deleted_at IS NULL
    ORDER BY p.id
    FOR UPDATE
),

changed AS (
    UPDATE app.projects AS p
    SET
        deleted_at = now(),
        deleted_by = :actor,
        updated_by = :actor
    FROM old AS o
    WHERE
        p.id = o.id
        AND (SELECT count(*) FROM old) = cardinality(:ids::uuid[])
    RETURNING
        p.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'project.soft_delete' AS action,
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
WHERE (SELECT app.act_as(:as_user))
ORDER BY c.id;

-- name: restore_projects(ids, as_user, actor)
-- Undo the soft delete of every project in ids, all or nothing: only when
-- each id is a soft-deleted project that as_user owns; one project.restore
-- audit event per project; return the restored rows (none if any id does
-- not qualify), locked in id order.
-- unique_projects_owner_id_and_name -> ConflictError (nothing is restored).
WITH old AS (
    SELECT p.*
    FROM app.projects AS p
    WHERE
        p.id = any(:ids::uuid[])
        AND p.owner_id = :as_user
        AND p.deleted_at IS NOT NULL
    ORDER BY p.id
    FOR UPDATE
),

changed AS (
    UPDATE app.projects AS p
    SET
        deleted_at = NULL,
        deleted_by = NULL,
        updated_by = :actor
    FROM old AS o
    WHERE
        p.id = o.id
        AND (SELECT count(*) FROM old) = cardinality(:ids::uuid[])
    RETURNING
        p.*,
        to_jsonb(o) AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'project.restore' AS action,
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
WHERE (SELECT app.act_as(:as_user))
ORDER BY c.id;
