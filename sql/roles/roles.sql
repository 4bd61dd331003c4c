-- Roles and permissions: named roles hold named permissions, users hold roles.
-- Rows map positionally onto vdata.models.roles.Role / Permission. Every
-- write records its audit_log event in the same statement (a data-modifying
-- CTE). Grants and assignments are link rows: inserted to grant, deleted to
-- revoke, never updated.

-- name: insert_role(name, description, actor)^
-- Create a role and its role.create audit event; return it.
-- unique_roles_name -> ConflictError; check_roles_* -> ValidationError.
WITH
created AS (
    INSERT INTO app.roles (
        name,
        description,
        created_by,
        updated_by
    )
    VALUES (
        :name,
        :description,
        :actor,
        :actor
    )
    RETURNING
        roles.id,
        roles.name,
        roles.description,
        roles.created_at,
        roles.created_by,
        roles.updated_at,
        roles.updated_by,
        roles.version,
        roles.deleted_at,
        roles.deleted_by
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        after
    )
    SELECT
        :actor,
        'role.create' AS action,
        'role' AS entity_type,
        c.id::text AS entity_id,
        to_jsonb(c) AS after
    FROM created AS c
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
FROM created AS c;

-- name: get_role_by_id(id)^
-- Return one live role by primary key, or nothing.
SELECT
    r.id,
    r.name,
    r.description,
    r.created_at,
    r.created_by,
    r.updated_at,
    r.updated_by,
    r.version,
    r.deleted_at,
    r.deleted_by
FROM app.roles AS r
WHERE
    r.id = :id
    AND r.deleted_at IS NULL;

-- name: get_role_by_name(name)^
-- Return one live role by its exact name, or nothing.
SELECT
    r.id,
    r.name,
    r.description,
    r.created_at,
    r.created_by,
    r.updated_at,
    r.updated_by,
    r.version,
    r.deleted_at,
    r.deleted_by
FROM app.roles AS r
WHERE
    r.name = :name
    AND r.deleted_at IS NULL;

-- name: list_roles()
-- Return every live role, by name.
SELECT
    r.id,
    r.name,
    r.description,
    r.created_at,
    r.created_by,
    r.updated_at,
    r.updated_by,
    r.version,
    r.deleted_at,
    r.deleted_by
FROM app.roles AS r
WHERE r.deleted_at IS NULL
ORDER BY r.name;

-- name: insert_permission(name, description, actor)^
-- Create a permission and its permission.create audit event; return it.
-- unique_permissions_name -> ConflictError; check_permissions_* -> ValidationError.
WITH
created AS (
    INSERT INTO app.permissions (
        name,
        description,
        created_by,
        updated_by
    )
    VALUES (
        :name,
        :description,
        :actor,
        :actor
    )
    RETURNING
        permissions.id,
        permissions.name,
        permissions.description,
        permissions.created_at,
        permissions.created_by,
        permissions.updated_at,
        permissions.updated_by,
        permissions.version,
        permissions.deleted_at,
        permissions.deleted_by
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        after
    )
    SELECT
        :actor,
        'permission.create' AS action,
        'permission' AS entity_type,
        c.id::text AS entity_id,
        to_jsonb(c) AS after
    FROM created AS c
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
FROM created AS c;

-- name: get_permission_by_id(id)^
-- Return one live permission by primary key, or nothing.
SELECT
    p.id,
    p.name,
    p.description,
    p.created_at,
    p.created_by,
    p.updated_at,
    p.updated_by,
    p.version,
    p.deleted_at,
    p.deleted_by
FROM app.permissions AS p
WHERE
    p.id = :id
    AND p.deleted_at IS NULL;

-- name: get_permission_by_name(name)^
-- Return one live permission by its exact name, or nothing.
SELECT
    p.id,
    p.name,
    p.description,
    p.created_at,
    p.created_by,
    p.updated_at,
    p.updated_by,
    p.version,
    p.deleted_at,
    p.deleted_by
FROM app.permissions AS p
WHERE
    p.name = :name
    AND p.deleted_at IS NULL;

-- name: list_permissions()
-- Return every live permission, by name.
SELECT
    p.id,
    p.name,
    p.description,
    p.created_at,
    p.created_by,
    p.updated_at,
    p.updated_by,
    p.version,
    p.deleted_at,
    p.deleted_by
FROM app.permissions AS p
WHERE p.deleted_at IS NULL
ORDER BY p.name;

-- name: grant_permission(role_id, permission_id, actor)$
-- Let role_id grant permission_id; return true, or false if it already did.
-- fk_role_permissions_role_id_roles / _permission_id_permissions ->
-- ForeignKeyError for an unknown role or permission. Audited as role.grant.
WITH
changed AS (
    INSERT INTO app.role_permissions AS l (
        role_id,
        permission_id,
        created_by
    )
    VALUES (
        :role_id,
        :permission_id,
        :actor
    )
    ON CONFLICT ON CONSTRAINT pk_role_permissions DO NOTHING
    RETURNING
        l.role_id,
        l.permission_id,
        l.created_at,
        l.created_by
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after
    )
    SELECT
        :actor,
        'role.grant' AS action,
        'role' AS entity_type,
        c.role_id::text AS entity_id,
        NULL::jsonb AS before,
        to_jsonb(c) AS after
    FROM changed AS c
)

SELECT count(*) > 0 AS changed
FROM changed;

-- name: revoke_permission(role_id, permission_id, actor)$
-- Stop role_id granting permission_id; return true, or false if it did not.
-- Audited as role.revoke.
WITH
changed AS (
    DELETE FROM app.role_permissions AS l
    WHERE
        l.role_id = :role_id
        AND l.permission_id = :permission_id
    RETURNING
        l.role_id,
        l.permission_id,
        l.created_at,
        l.created_by
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after
    )
    SELECT
        :actor,
        'role.revoke' AS action,
        'role' AS entity_type,
        c.role_id::text AS entity_id,
        to_jsonb(c) AS before,
        NULL::jsonb AS after
    FROM changed AS c
)

SELECT count(*) > 0 AS changed
FROM changed;

-- name: assign_role(user_id, role_id, actor)$
-- Give user_id the role role_id; return true, or false if it already had it.
-- fk_user_roles_user_id_users / fk_user_roles_role_id_roles -> ForeignKeyError
-- for an unknown user or role. Audited as user.role_assign.
WITH
changed AS (
    INSERT INTO app.user_roles AS l (
        user_id,
        role_id,
        created_by
    )
    VALUES (
        :user_id,
        :role_id,
        :actor
    )
    ON CONFLICT ON CONSTRAINT pk_user_roles DO NOTHING
    RETURNING
        l.user_id,
        l.role_id,
        l.created_at,
        l.created_by
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after
    )
    SELECT
        :actor,
        'user.role_assign' AS action,
        'user' AS entity_type,
        c.user_id::text AS entity_id,
        NULL::jsonb AS before,
        to_jsonb(c) AS after
    FROM changed AS c
)

SELECT count(*) > 0 AS changed
FROM changed;

-- name: unassign_role(user_id, role_id, actor)$
-- Take the role role_id from user_id; return true, or false if it did not
-- have it. Audited as user.role_unassign.
WITH
changed AS (
    DELETE FROM app.user_roles AS l
    WHERE
        l.user_id = :user_id
        AND l.role_id = :role_id
    RETURNING
        l.user_id,
        l.role_id,
        l.created_at,
        l.created_by
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after
    )
    SELECT
        :actor,
        'user.role_unassign' AS action,
        'user' AS entity_type,
        c.user_id::text AS entity_id,
        to_jsonb(c) AS before,
        NULL::jsonb AS after
    FROM changed AS c
)

SELECT count(*) > 0 AS changed
FROM changed;

-- name: list_permission_names_by_user_id(user_id)$
-- Return the sorted names of every permission user_id holds through its
-- roles, in one query; empty for an unknown, inactive or deleted user and
-- ignoring soft-deleted roles and permissions.
WITH
held AS (
    SELECT
        ur.user_id,
        ur.role_id
    FROM app.user_roles AS ur
    WHERE ur.user_id = :user_id
),

live_user AS (
    SELECT u.id
    FROM app.users AS u
    WHERE
        u.id = :user_id
        AND u.is_active
        AND u.deleted_at IS NULL
)

SELECT coalesce(array_agg(DISTINCT p.name ORDER BY p.name), '{}'::text[]) AS permission_names
FROM live_user AS lu
INNER JOIN held AS h ON lu.id = h.user_id
INNER JOIN app.roles AS r ON h.role_id = r.id
INNER JOIN app.role_permissions AS rp ON r.id = rp.role_id
INNER JOIN app.permissions AS p ON rp.permission_id = p.id
WHERE
    r.deleted_at IS NULL
    AND p.deleted_at IS NULL;

-- name: user_has_permission(user_id, permission)$
-- Return whether user_id holds the permission named permission through any
-- of its roles (same rules as list_permission_names_by_user_id).
WITH
held AS (
    SELECT
        ur.user_id,
        ur.role_id
    FROM app.user_roles AS ur
    WHERE ur.user_id = :user_id
),

live_user AS (
    SELECT u.id
    FROM app.users AS u
    WHERE
        u.id = :user_id
        AND u.is_active
        AND u.deleted_at IS NULL
),

wanted AS (
    SELECT wp.id
    FROM app.permissions AS wp
    WHERE wp.name = :permission
)

SELECT count(*) > 0 AS allowed
FROM live_user AS lu
INNER JOIN held AS h ON lu.id = h.user_id
INNER JOIN app.roles AS r ON h.role_id = r.id
INNER JOIN app.role_permissions AS rp ON r.id = rp.role_id
INNER JOIN app.permissions AS p ON rp.permission_id = p.id
INNER JOIN wanted AS w ON p.id = w.id
WHERE
    r.deleted_at IS NULL
    AND p.deleted_at IS NULL;

-- name: list_roles_by_user_id(user_id)
-- Return the live roles user_id holds, by name.
WITH
held AS (
    SELECT
        ur.user_id,
        ur.role_id
    FROM app.user_roles AS ur
    WHERE ur.user_id = :user_id
)

SELECT
    r.id,
    r.name,
    r.description,
    r.created_at,
    r.created_by,
    r.updated_at,
    r.updated_by,
    r.version,
    r.deleted_at,
    r.deleted_by
FROM held AS h
INNER JOIN app.roles AS r ON h.role_id = r.id
WHERE r.deleted_at IS NULL
ORDER BY r.name;
