-- Roles and permissions: soft delete and restore (its undo). Names are
-- unique forever (plain unique constraints), so a soft-deleted role or
-- permission keeps its name: creating another of that name is
-- ConflictError, and restoring never conflicts. Grants (role_permissions,
-- user_roles) are kept while a role or permission is soft-deleted and grant
-- nothing meanwhile (the permission queries skip soft-deleted rows).

-- name: soft_delete_role(id, expected_version, actor)^
-- Soft-delete the live role id, at expected_version unless it is null,
-- with its role.soft_delete audit event; return it, or nothing. Its
-- grants stay, but a soft-deleted role grants nothing until restored.
WITH
target AS (
    SELECT r.*
    FROM app.roles AS r
    WHERE
        r.id = :id
        AND r.deleted_at IS NULL
        AND (:expected_version::integer IS NULL OR r.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.roles AS r
    SET
        deleted_at = now(),
        deleted_by = :actor,
        updated_by = :actor
    FROM target AS t
    WHERE r.id = t.id
    RETURNING
        r.*,
        to_jsonb(t) AS before_row
),

audited AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'role.soft_delete' AS action,
        'role' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.name,
    c.description,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c;

-- name: restore_role(id, expected_version, actor)^
-- Undo the soft delete of role id, at expected_version unless it is
-- null, with its role.restore audit event; return it, or nothing. Its
-- grants apply again. The name stayed taken (unique_roles_name
-- is not partial), so a restore never conflicts.
WITH
target AS (
    SELECT r.*
    FROM app.roles AS r
    WHERE
        r.id = :id
        AND r.deleted_at IS NOT NULL
        AND (:expected_version::integer IS NULL OR r.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.roles AS r
    SET
        deleted_at = NULL,
        deleted_by = NULL,
        updated_by = :actor
    FROM target AS t
    WHERE r.id = t.id
    RETURNING
        r.*,
        to_jsonb(t) AS before_row
),

audited AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'role.restore' AS action,
        'role' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.name,
    c.description,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c;

-- name: get_role_version(id)$
-- Return the version of the live role id, or nothing (why a
-- soft delete touched no row).
SELECT r.version
FROM app.roles AS r
WHERE
    r.id = :id
    AND r.deleted_at IS NULL;

-- name: get_deleted_role_version(id)$
-- Return the version of the soft-deleted role id, or nothing (why a
-- restore touched no row).
SELECT r.version
FROM app.roles AS r
WHERE
    r.id = :id
    AND r.deleted_at IS NOT NULL;

-- name: soft_delete_permission(id, expected_version, actor)^
-- Soft-delete the live permission id, at expected_version unless it is null,
-- with its permission.soft_delete audit event; return it, or nothing. Its
-- grants stay, but a soft-deleted permission grants nothing until restored.
WITH
target AS (
    SELECT p.*
    FROM app.permissions AS p
    WHERE
        p.id = :id
        AND p.deleted_at IS NULL
        AND (:expected_version::integer IS NULL OR p.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.permissions AS p
    SET
        deleted_at = now(),
        deleted_by = :actor,
        updated_by = :actor
    FROM target AS t
    WHERE p.id = t.id
    RETURNING
        p.*,
        to_jsonb(t) AS before_row
),

audited AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'permission.soft_delete' AS action,
        'permission' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.name,
    c.description,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c;

-- name: restore_permission(id, expected_version, actor)^
-- Undo the soft delete of permission id, at expected_version unless it is
-- null, with its permission.restore audit event; return it, or nothing. Its
-- grants apply again. The name stayed taken (unique_permissions_name
-- is not partial), so a restore never conflicts.
WITH
target AS (
    SELECT p.*
    FROM app.permissions AS p
    WHERE
        p.id = :id
        AND p.deleted_at IS NOT NULL
        AND (:expected_version::integer IS NULL OR p.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.permissions AS p
    SET
        deleted_at = NULL,
        deleted_by = NULL,
        updated_by = :actor
    FROM target AS t
    WHERE p.id = t.id
    RETURNING
        p.*,
        to_jsonb(t) AS before_row
),

audited AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'permission.restore' AS action,
        'permission' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.name,
    c.description,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by
FROM changed AS c;

-- name: get_permission_version(id)$
-- Return the version of the live permission id, or nothing (why a
-- soft delete touched no row).
SELECT p.version
FROM app.permissions AS p
WHERE
    p.id = :id
    AND p.deleted_at IS NULL;

-- name: get_deleted_permission_version(id)$
-- Return the version of the soft-deleted permission id, or nothing (why a
-- restore touched no row).
SELECT p.version
FROM app.permissions AS p
WHERE
    p.id = :id
    AND p.deleted_at IS NOT NULL;
