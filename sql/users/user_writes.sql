-- User writes: create, update, activate/deactivate, soft delete, restore, purge.
-- Each statement writes its audit_log row in the same statement (a
-- data-modifying CTE); before/after are to_jsonb() of rows that hold only
-- app.user_rows' columns (target locks the row through the view), so no
-- password or token hash ever reaches the audit trail.

-- name: insert_user(username, email, full_name, password_hash, actor)^
-- Create a user and its user.create audit event; return the new user.
-- unique_users_username or unique_users_email_lower -> ConflictError;
-- check_users_* -> ValidationError.
WITH
created AS (
    INSERT INTO app.users (
        username,
        email,
        full_name,
        password_hash,
        created_by,
        updated_by
    )
    VALUES (
        :username,
        :email,
        :full_name,
        :password_hash,
        :actor,
        :actor
    )
    RETURNING
        users.id,
        users.username,
        users.email,
        users.full_name,
        users.is_active,
        users.email_verified_at,
        users.failed_login_count,
        users.locked_until,
        users.last_login_at,
        users.password_changed_at,
        users.created_at,
        users.created_by,
        users.updated_at,
        users.updated_by,
        users.version,
        users.deleted_at,
        users.deleted_by,
        host(users.last_login_ip) AS last_login_ip
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
        'user.create' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        NULL::jsonb AS before,
        to_jsonb(c) - 'before_row' AS after,
        NULL::inet AS ip
    FROM created AS c
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
FROM created AS c;


-- name: update_user(id, expected_version, username, email, full_name, actor)^
-- Apply the non-null fields to the live user id if its version is still
-- expected_version; return the updated user, or nothing (missing or stale:
-- the repository tells which). A new email (other than by case) clears
-- email_verified_at. unique_users_username / unique_users_email_lower ->
-- ConflictError; check_users_* -> ValidationError.
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NULL
        AND u.version = :expected_version
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        username = coalesce(:username, t.username),
        email = coalesce(:email, t.email),
        full_name = coalesce(:full_name, t.full_name),
        email_verified_at = CASE
            WHEN lower(coalesce(:email, t.email)) = lower(t.email) THEN t.email_verified_at
        END,
        email_verification_token_hash = CASE
            WHEN lower(coalesce(:email, t.email)) = lower(t.email)
                THEN u.email_verification_token_hash
        END,
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
        'user.update' AS action,
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


-- name: set_user_active(id, active, actor)^
-- Activate (active = true) or deactivate the live user id; return the user,
-- or nothing. Audited as user.activate or user.deactivate.
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NULL
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        is_active = :active::boolean,
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
        CASE WHEN :active::boolean THEN 'user.activate' ELSE 'user.deactivate' END AS action,
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


-- name: purge_user(id, actor)^
-- Delete the soft-deleted user id for good (API keys, sessions and role
-- assignments go with it, ON DELETE CASCADE); return the row as it was, or
-- nothing. fk_projects_owner_id_users -> ForeignKeyError while it owns
-- projects. Audited as user.purge.
WITH
purged AS (
    DELETE FROM app.users AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NOT NULL
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
        host(u.last_login_ip) AS last_login_ip
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
        'user.purge' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        to_jsonb(c) AS before,
        NULL::jsonb AS after,
        NULL::inet AS ip
    FROM purged AS c
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
FROM purged AS c;
