-- Users: soft delete and restore (its undo), one user or many, and the
-- revocation of every credential of a user. A soft-deleted user keeps its
-- username and email (plain unique constraints, taken forever), so restore
-- never conflicts. Bulk statements are all or nothing: they change rows
-- only when every id qualifies, lock them in id order and write one audit
-- event per row.

-- name: soft_delete_user(id, expected_version, actor)^
-- Soft-delete the live user id, at expected_version unless it is null (it
-- keeps its username and email); return the user, or nothing. Audited as
-- user.soft_delete.
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NULL
        AND (:expected_version::integer IS NULL OR u.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        deleted_at = now(),
        deleted_by = :actor,
        updated_by = :actor
    FROM target AS t
    WHERE u.id = t.id
    RETURNING
        u.id,
        u.username,
        u.email,
        u.full_name,
        u.is_active,
        u.email_verified_at,
        u.failed_login_count,
        u.locked_until,
        u.last_login_at,
        u.password_changed_at,
        u.created_at,
        u.created_by,
        u.updated_at,
        u.updated_by,
        u.version,
        u.deleted_at,
        u.deleted_by,
        host(u.last_login_ip) AS last_login_ip,
        to_jsonb(t) AS before_row
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after,
        ip
    )
    SELECT
        :actor,
        'user.soft_delete' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after,
        NULL::inet AS ip
    FROM changed AS c
)

SELECT
    c.id,
    c.username,
    c.email,
    c.full_name,
    c.is_active,
    c.email_verified_at,
    c.failed_login_count,
    c.locked_until,
    c.last_login_at,
    c.password_changed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by,
    c.last_login_ip
FROM changed AS c;

-- name: restore_user(id, expected_version, actor)^
-- Undo the soft delete of user id, at expected_version unless it is null;
-- return the user, or nothing if it is not soft-deleted (or has moved on).
-- Audited as user.restore. Usernames and emails stay taken after a soft
-- delete, so a restore never conflicts.
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NOT NULL
        AND (:expected_version::integer IS NULL OR u.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        deleted_at = NULL,
        deleted_by = NULL,
        updated_by = :actor
    FROM target AS t
    WHERE u.id = t.id
    RETURNING
        u.id,
        u.username,
        u.email,
        u.full_name,
        u.is_active,
        u.email_verified_at,
        u.failed_login_count,
        u.locked_until,
        u.last_login_at,
        u.password_changed_at,
        u.created_at,
        u.created_by,
        u.updated_at,
        u.updated_by,
        u.version,
        u.deleted_at,
        u.deleted_by,
        host(u.last_login_ip) AS last_login_ip,
        to_jsonb(t) AS before_row
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after,
        ip
    )
    SELECT
        :actor,
        'user.restore' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after,
        NULL::inet AS ip
    FROM changed AS c
)

SELECT
    c.id,
    c.username,
    c.email,
    c.full_name,
    c.is_active,
    c.email_verified_at,
    c.failed_login_count,
    c.locked_until,
    c.last_login_at,
    c.password_changed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by,
    c.last_login_ip
FROM changed AS c;

-- name: get_deleted_user_version(id)$
-- Return the version of the soft-deleted user id, or nothing (why a restore
-- touched no row).
SELECT u.version
FROM app.users AS u
WHERE
    u.id = :id
    AND u.deleted_at IS NOT NULL;

-- name: revoke_user_credentials(user_id, actor)^
-- Revoke every unrevoked API key and every unrevoked, unexpired session of
-- user_id (live or soft-deleted) in one statement, with one api_key.revoke
-- or session.revoke audit event per credential; return how many of each, or
-- nothing if there is no such user. The user row is share-locked first, so
-- a concurrent purge waits. Nothing can fail.
-- not-null: user_id, api_keys, sessions
WITH owner AS (
    SELECT u.id
    FROM app.users AS u
    WHERE u.id = :user_id
    FOR SHARE
),

keys AS (
    UPDATE app.api_keys AS k
    SET
        revoked_at = now(),
        updated_by = :actor
    FROM owner AS o
    WHERE
        k.user_id = o.id
        AND k.revoked_at IS NULL
        AND k.deleted_at IS NULL
    RETURNING
        k.id,
        k.revoked_at
),

sessions AS (
    UPDATE app.sessions AS s
    SET
        revoked_at = now(),
        updated_by = :actor
    FROM owner AS o
    WHERE
        s.user_id = o.id
        AND s.revoked_at IS NULL
        AND s.deleted_at IS NULL
        AND s.expires_at > now()
    RETURNING
        s.id,
        s.revoked_at
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'api_key.revoke' AS action,
        'api_key' AS entity_type,
        k.id::text AS entity_id,
        jsonb_build_object('revoked_at', NULL) AS before,
        jsonb_build_object('revoked_at', k.revoked_at) AS after
    FROM keys AS k
    UNION ALL
    SELECT
        :actor,
        'session.revoke' AS action,
        'session' AS entity_type,
        s.id::text AS entity_id,
        jsonb_build_object('revoked_at', NULL) AS before,
        jsonb_build_object('revoked_at', s.revoked_at) AS after
    FROM sessions AS s
)

SELECT
    o.id AS user_id,
    (SELECT count(*) FROM keys) AS api_keys,
    (SELECT count(*) FROM sessions) AS sessions
FROM owner AS o;

-- name: soft_delete_users(ids, actor)
-- Soft-delete every user in ids, all or nothing: only when each is a live
-- user; one user.soft_delete audit event per user; return the users by id
-- (none if any id does not qualify).
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = any(:ids::uuid[])
        AND u.deleted_at IS NULL
    ORDER BY u.id
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        deleted_at = now(),
        deleted_by = :actor,
        updated_by = :actor
    FROM target AS t
    WHERE
        u.id = t.id
        AND (SELECT count(*) FROM target) = cardinality(:ids::uuid[])
    RETURNING
        u.id,
        u.username,
        u.email,
        u.full_name,
        u.is_active,
        u.email_verified_at,
        u.failed_login_count,
        u.locked_until,
        u.last_login_at,
        u.password_changed_at,
        u.created_at,
        u.created_by,
        u.updated_at,
        u.updated_by,
        u.version,
        u.deleted_at,
        u.deleted_by,
        host(u.last_login_ip) AS last_login_ip,
        to_jsonb(t) AS before_row
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after,
        ip
    )
    SELECT
        :actor,
        'user.soft_delete' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after,
        NULL::inet AS ip
    FROM changed AS c
)

SELECT
    c.id,
    c.username,
    c.email,
    c.full_name,
    c.is_active,
    c.email_verified_at,
    c.failed_login_count,
    c.locked_until,
    c.last_login_at,
    c.password_changed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by,
    c.last_login_ip
FROM changed AS c
ORDER BY c.id;

-- name: restore_users(ids, actor)
-- Undo the soft delete of every user in ids, all or nothing: only when each
-- is a soft-deleted user; one user.restore audit event per user; return the
-- users by id (none if any id does not qualify).
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = any(:ids::uuid[])
        AND u.deleted_at IS NOT NULL
    ORDER BY u.id
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        deleted_at = NULL,
        deleted_by = NULL,
        updated_by = :actor
    FROM target AS t
    WHERE
        u.id = t.id
        AND (SELECT count(*) FROM target) = cardinality(:ids::uuid[])
    RETURNING
        u.id,
        u.username,
        u.email,
        u.full_name,
        u.is_active,
        u.email_verified_at,
        u.failed_login_count,
        u.locked_until,
        u.last_login_at,
        u.password_changed_at,
        u.created_at,
        u.created_by,
        u.updated_at,
        u.updated_by,
        u.version,
        u.deleted_at,
        u.deleted_by,
        host(u.last_login_ip) AS last_login_ip,
        to_jsonb(t) AS before_row
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        before,
        after,
        ip
    )
    SELECT
        :actor,
        'user.restore' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after,
        NULL::inet AS ip
    FROM changed AS c
)

SELECT
    c.id,
    c.username,
    c.email,
    c.full_name,
    c.is_active,
    c.email_verified_at,
    c.failed_login_count,
    c.locked_until,
    c.last_login_at,
    c.password_changed_at,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version,
    c.deleted_at,
    c.deleted_by,
    c.last_login_ip
FROM changed AS c
ORDER BY c.id;
