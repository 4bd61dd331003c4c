-- User credentials: login bookkeeping, password change, email verification.
-- Each write audits itself in the same statement (see user_writes.sql);
-- password and token hashes are never part of before/after. A write that
-- must see a hash (the password it replaces, the one a login checked)
-- checks it in its UPDATE, on the row target locked through app.user_rows.

-- name: change_user_password(id, old_password_hash, new_password_hash, actor)^
-- Replace the password of the live user id if its hash is still
-- old_password_hash (no concurrent change), set password_changed_at, revoke
-- every open session of the user and audit both; return the user, or nothing.
-- check_users_password_hash_argon2 -> ValidationError.
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
        password_hash = :new_password_hash,
        password_changed_at = now(),
        updated_by = :actor
    FROM target AS t
    WHERE
        u.id = t.id
        AND u.password_hash = :old_password_hash
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

revoked AS (
    UPDATE app.sessions AS s
    SET
        revoked_at = now(),
        updated_by = :actor
    FROM changed AS c
    WHERE
        s.user_id = c.id
        AND s.revoked_at IS NULL
    RETURNING
        s.id,
        s.user_id,
        s.revoked_at
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
        'user.password_change' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        (to_jsonb(c) - 'before_row')
        || jsonb_build_object('sessions_revoked', (SELECT count(*) FROM revoked)) AS after,
        NULL::inet AS ip
    FROM changed AS c
),

audited_sessions AS (
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
        'session.revoke' AS action,
        'session' AS entity_type,
        r.id::text AS entity_id,
        NULL::jsonb AS before,
        jsonb_build_object(
            'id', r.id,
            'user_id', r.user_id,
            'revoked_at', r.revoked_at,
            'reason', 'password_change'
        ) AS after
    FROM revoked AS r
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


-- name: record_failed_login(id, threshold, lockout_seconds, ip)^
-- Count one failed login of the live user id; when the count reaches
-- threshold, lock the account for lockout_seconds. A lock that has expired
-- starts the count again. Audited as user.login_failed or user.lock, with
-- the claimed user as actor. Return the user, or nothing.
WITH
target AS (
    SELECT
        u.*,
        CASE WHEN u.locked_until <= now() THEN 1 ELSE u.failed_login_count + 1 END AS next_count
    FROM app.user_rows AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NULL
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        failed_login_count = t.next_count,
        locked_until = CASE
            WHEN t.next_count >= :threshold::integer
                THEN now() + make_interval(secs => :lockout_seconds::double precision)
            WHEN t.locked_until <= now() THEN NULL
            ELSE t.locked_until
        END,
        updated_by = t.username
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
        to_jsonb(t) - 'next_count' AS before_row
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
        c.username AS actor,
        CASE
            WHEN c.failed_login_count >= :threshold::integer THEN 'user.lock'
            ELSE 'user.login_failed'
        END AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after,
        :ip::inet AS ip
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


-- name: record_login(id, password_hash, new_password_hash, ip)^
-- Record a successful login of the live, active, unlocked user id whose hash
-- is still password_hash: reset the failure count and lock, set
-- last_login_at/ip, and store new_password_hash when not null (re-hash with
-- current parameters). Audited as user.login. Return the user, or nothing.
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NULL
        AND u.is_active
        AND (u.locked_until IS NULL OR u.locked_until <= now())
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        failed_login_count = 0,
        locked_until = NULL,
        last_login_at = now(),
        last_login_ip = :ip::inet,
        password_hash = coalesce(:new_password_hash::text, u.password_hash),
        updated_by = t.username
    FROM target AS t
    WHERE
        u.id = t.id
        AND u.password_hash = :password_hash
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
        c.username AS actor,
        'user.login' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        (to_jsonb(c) - 'before_row')
        || jsonb_build_object('rehashed', :new_password_hash::text IS NOT NULL) AS after,
        :ip::inet AS ip
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


-- name: set_email_verification(id, token_hash, ttl_seconds, actor)^
-- Store the SHA-256 of a new email-verification token for the live,
-- unverified user id, valid for ttl_seconds (a new token replaces the old);
-- return the user, or nothing. unique_users_email_verification_token_hash ->
-- ConflictError (a token collision: retry).
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NULL
        AND u.email_verified_at IS NULL
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        email_verification_token_hash = :token_hash,
        email_verification_expires_at
        = now() + make_interval(secs => :ttl_seconds::double precision),
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
        'user.email_verification_issue' AS action,
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


-- name: verify_user_email(token_hash, actor)^
-- Mark the email of the live user holding the unexpired token token_hash as
-- verified and consume the token (single use); actor defaults to the user.
-- Return the user, or nothing (unknown, used or expired token). target reads
-- app.users, not app.user_rows: it finds the row by the token's hash, which
-- the view does not show.
WITH
target AS (
    SELECT
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
    FROM app.users AS u
    WHERE
        u.email_verification_token_hash = :token_hash
        AND u.email_verification_expires_at > now()
        AND u.deleted_at IS NULL
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        email_verified_at = now(),
        email_verification_token_hash = NULL,
        email_verification_expires_at = NULL,
        updated_by = coalesce(:actor::text, t.username)
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
        coalesce(:actor::text, c.username) AS actor,
        'user.email_verify' AS action,
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
