-- Password reset and administrative unlock. A reset token lives in
-- app.password_reset_tokens (its SHA-256 only; at most one per user). Each
-- write audits itself in the same statement; token and password hashes are
-- never part of before/after.

-- name: set_password_reset(login, token_hash, ttl_seconds, ip, actor)^
-- Store the SHA-256 of a new password-reset token for the live, active user
-- whose username is login, or whose email is login case-insensitively,
-- valid for ttl_seconds (it replaces an earlier token of that user); audit
-- user.password_reset_issue, with actor defaulting to the user. Return the
-- user, or nothing when no live, active account has that login (the same
-- single statement runs either way). unique_password_reset_tokens_token_hash
-- -> ConflictError (a token collision: retry).
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        (u.username = :login OR lower(u.email) = lower(:login))
        AND u.deleted_at IS NULL
        AND u.is_active
),

issued AS (
    INSERT INTO app.password_reset_tokens (user_id, token_hash, expires_at, created_by)
    SELECT
        t.id AS user_id,
        :token_hash,
        now() + make_interval(secs => :ttl_seconds::double precision) AS expires_at,
        coalesce(:actor::text, t.username) AS created_by
    FROM target AS t
    ON CONFLICT ON CONSTRAINT pk_password_reset_tokens DO UPDATE
        SET
            token_hash = excluded.token_hash,
            expires_at = excluded.expires_at,
            created_at = excluded.created_at,
            created_by = excluded.created_by
    RETURNING
        user_id,
        expires_at,
        created_by
),

audited AS (
    INSERT INTO app.audit_log (
        actor,
        action,
        entity_type,
        entity_id,
        after,
        ip
    )
    SELECT
        i.created_by AS actor,
        'user.password_reset_issue' AS action,
        'user' AS entity_type,
        i.user_id::text AS entity_id,
        jsonb_build_object('expires_at', i.expires_at) AS after,
        :ip::inet AS ip
    FROM issued AS i
)

SELECT
    t.id,
    t.username,
    t.email,
    t.full_name,
    t.is_active,
    t.email_verified_at,
    t.failed_login_count,
    t.locked_until,
    t.last_login_at,
    t.password_changed_at,
    t.created_at,
    t.created_by,
    t.updated_at,
    t.updated_by,
    t.version,
    t.deleted_at,
    t.deleted_by,
    t.last_login_ip,
    i.expires_at
FROM target AS t
INNER JOIN issued AS i ON t.id = i.user_id;


-- name: get_password_reset_user(token_hash)^
-- Return the live, active user holding the unexpired reset token token_hash,
-- or nothing (unknown, used or expired token). Reads only: a service shows
-- the reset form (and the user's sessions and keys to revoke) with it.
WITH holder AS (
    SELECT r.user_id
    FROM app.password_reset_tokens AS r
    WHERE
        r.token_hash = :token_hash
        AND r.expires_at > now()
)

SELECT u.*
FROM app.user_rows AS u
WHERE
    u.id IN (SELECT h.user_id FROM holder AS h)
    AND u.deleted_at IS NULL
    AND u.is_active;


-- name: reset_password(digest, new_hash, all_sessions, session_ids, all_keys, key_ids, ip, actor)^
-- Use up the reset token whose SHA-256 is digest (deleted whether or not it is still
-- valid: single use) and, if it was unexpired and its user is live and
-- active: set the new password, clear the lockout (failed_login_count,
-- locked_until), revoke the user's open sessions (all, or those in
-- session_ids) and API keys (all, or those in key_ids), and audit
-- user.password_reset plus one session.revoke / api_key.revoke per row.
-- actor defaults to the user. Return the user, or nothing.
-- check_users_password_hash_argon2 -> ValidationError.
WITH
claimed AS (
    DELETE FROM app.password_reset_tokens AS r
    WHERE r.token_hash = :digest
    RETURNING
        r.user_id,
        r.expires_at
),

target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id IN (
            SELECT c.user_id
            FROM claimed AS c
            WHERE c.expires_at > now()
        )
        AND u.deleted_at IS NULL
        AND u.is_active
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        password_hash = :new_hash,
        password_changed_at = now(),
        failed_login_count = 0,
        locked_until = NULL,
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

revoked_sessions AS (
    UPDATE app.sessions AS s
    SET
        revoked_at = now(),
        updated_by = c.updated_by
    FROM changed AS c
    WHERE
        s.user_id = c.id
        AND s.revoked_at IS NULL
        AND s.deleted_at IS NULL
        AND (:all_sessions::boolean OR s.id = any(:session_ids::uuid[]))
    RETURNING
        s.id,
        s.revoked_at,
        s.updated_by
),

revoked_keys AS (
    UPDATE app.api_keys AS k
    SET
        revoked_at = now(),
        updated_by = c.updated_by
    FROM changed AS c
    WHERE
        k.user_id = c.id
        AND k.revoked_at IS NULL
        AND k.deleted_at IS NULL
        AND (:all_keys::boolean OR k.id = any(:key_ids::uuid[]))
    RETURNING
        k.id,
        k.revoked_at,
        k.updated_by
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
        c.updated_by AS actor,
        'user.password_reset' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        (to_jsonb(c) - 'before_row')
        || jsonb_build_object(
            'sessions_revoked', (SELECT count(*) FROM revoked_sessions),
            'api_keys_revoked', (SELECT count(*) FROM revoked_keys)
        ) AS after,
        :ip::inet AS ip
    FROM changed AS c
    UNION ALL
    SELECT
        r.updated_by AS actor,
        'session.revoke' AS action,
        'session' AS entity_type,
        r.id::text AS entity_id,
        jsonb_build_object('revoked_at', NULL) AS before,
        jsonb_build_object('revoked_at', r.revoked_at, 'reason', 'password_reset') AS after,
        :ip::inet AS ip
    FROM revoked_sessions AS r
    UNION ALL
    SELECT
        r.updated_by AS actor,
        'api_key.revoke' AS action,
        'api_key' AS entity_type,
        r.id::text AS entity_id,
        jsonb_build_object('revoked_at', NULL) AS before,
        jsonb_build_object('revoked_at', r.revoked_at, 'reason', 'password_reset') AS after,
        :ip::inet AS ip
    FROM revoked_keys AS r
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


-- name: unlock_user(id, actor)^
-- Administrative unlock of the live user id: clear failed_login_count and
-- locked_until and audit user.unlock. Return the user, or nothing when it is
-- absent, deleted, or has neither a lock nor a failure to clear (then
-- nothing is written). Nothing can fail.
WITH
target AS (
    SELECT u.*
    FROM app.user_rows AS u
    WHERE
        u.id = :id
        AND u.deleted_at IS NULL
        AND (u.failed_login_count > 0 OR u.locked_until IS NOT NULL)
    FOR UPDATE
),

changed AS (
    UPDATE app.users AS u
    SET
        failed_login_count = 0,
        locked_until = NULL,
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
        after
    )
    SELECT
        :actor,
        'user.unlock' AS action,
        'user' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' AS after
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


-- name: count_expired_password_resets()$
-- Return how many reset tokens have expired (what cleanup would delete).
SELECT count(*)
FROM app.password_reset_tokens AS r
WHERE r.expires_at <= now();


-- name: delete_expired_password_resets()$
-- Delete the expired reset tokens; return how many. Not audited: an unused
-- token expiring changes nothing about the account. Nothing can fail.
WITH purged AS (
    DELETE FROM app.password_reset_tokens AS r
    WHERE r.expires_at <= now()
    RETURNING r.user_id
)

SELECT count(*) FROM purged;


-- name: count_expired_email_verifications()$
-- Return how many users hold an expired email-verification token.
-- seqscan-ok: cleanup (maintenance), not a request path; few users hold a token
SELECT count(*)
FROM app.users AS u
WHERE u.email_verification_expires_at <= now();


-- name: clear_expired_email_verifications()$
-- Clear expired email-verification tokens (hash and expiry); return how
-- many users had one. Not audited, and updated_by is left alone: only the
-- expired token goes (the version still moves, as on any row change).
-- seqscan-ok: cleanup (maintenance), not a request path; few users hold a token
WITH cleared AS (
    UPDATE app.users AS u
    SET
        email_verification_token_hash = NULL,
        email_verification_expires_at = NULL
    WHERE u.email_verification_expires_at <= now()
    RETURNING u.id
)

SELECT count(*) FROM cleared;
