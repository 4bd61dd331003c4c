-- Log-in sessions (app.sessions). The client holds a random token; the row
-- holds its SHA-256 (token_hash), never the token. Every change writes its
-- app.audit_log row in the same statement, without the digest. Touching
-- last_seen_at on validation is not audited: it is not a change of the
-- session, and an audit row per request would serialise every validation on
-- the audit chain's head row.

-- name: insert_session(user_id, token_hash, ip, user_agent, ttl_seconds, actor)^
-- Open a session for an active, not deleted user, expiring ttl_seconds from
-- now; return it, or nothing when no such user exists.
-- unique_sessions_token_hash -> ConflictError (a 256-bit token: never seen);
-- check_sessions_user_agent_length -> ValidationError.
WITH new_session AS (
    INSERT INTO app.sessions (
        user_id,
        token_hash,
        ip,
        user_agent,
        expires_at,
        created_by,
        updated_by
    )
    SELECT
        u.id,
        :token_hash,
        :ip::inet,
        :user_agent::text,
        now() + make_interval(secs => :ttl_seconds::double precision) AS expires_at,
        :actor AS created_by,
        :actor AS updated_by
    FROM app.users AS u
    WHERE
        u.id = :user_id
        AND u.is_active
        AND u.deleted_at IS NULL
    RETURNING
        id,
        user_id,
        ip,
        user_agent,
        last_seen_at,
        expires_at,
        revoked_at,
        created_at,
        created_by,
        updated_at,
        updated_by,
        version
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after, ip)
    SELECT
        :actor,
        'session.create' AS action,
        'session' AS entity_type,
        n.id::text AS entity_id,
        jsonb_build_object(
            'id', n.id,
            'user_id', n.user_id,
            'ip', n.ip,
            'user_agent', n.user_agent,
            'expires_at', n.expires_at
        ) AS after,
        n.ip
    FROM new_session AS n
)

SELECT
    n.id,
    n.user_id,
    n.ip,
    n.user_agent,
    n.last_seen_at,
    n.expires_at,
    n.revoked_at,
    n.created_at,
    n.created_by,
    n.updated_at,
    n.updated_by,
    n.version
FROM new_session AS n;

-- name: touch_session(token_hash)^
-- Validate a session and record that it was seen, in one statement: return
-- it with last_seen_at = now(), or nothing when no usable session has this
-- token digest (unknown, revoked, deleted, expired, or its user inactive or
-- deleted). Nothing can fail.
UPDATE app.sessions AS s
SET last_seen_at = now()
FROM app.users AS u
WHERE
    s.token_hash = :token_hash
    AND s.revoked_at IS NULL
    AND s.deleted_at IS NULL
    AND s.expires_at > now()
    AND u.id = s.user_id
    AND u.is_active
    AND u.deleted_at IS NULL
RETURNING
    s.id,
    s.user_id,
    s.ip,
    s.user_agent,
    s.last_seen_at,
    s.expires_at,
    s.revoked_at,
    s.created_at,
    s.created_by,
    s.updated_at,
    s.updated_by,
    s.version;

-- name: get_session_by_id(id)^
-- Return one session that is not deleted (revoked and expired included), or
-- nothing.
SELECT
    s.id,
    s.user_id,
    s.ip,
    s.user_agent,
    s.last_seen_at,
    s.expires_at,
    s.revoked_at,
    s.created_at,
    s.created_by,
    s.updated_at,
    s.updated_by,
    s.version
FROM app.sessions AS s
WHERE
    s.id = :id
    AND s.deleted_at IS NULL;

-- name: list_active_sessions_by_user_id(user_id)
-- Return a user's sessions that are neither revoked, deleted nor expired,
-- most recently seen first.
SELECT
    s.id,
    s.user_id,
    s.ip,
    s.user_agent,
    s.last_seen_at,
    s.expires_at,
    s.revoked_at,
    s.created_at,
    s.created_by,
    s.updated_at,
    s.updated_by,
    s.version
FROM app.sessions AS s
WHERE
    s.user_id = :user_id
    AND s.revoked_at IS NULL
    AND s.deleted_at IS NULL
    AND s.expires_at > now()
ORDER BY
    s.last_seen_at DESC,
    s.id ASC;

-- name: revoke_session(id, user_id, actor)^
-- not-null: id, user_id, last_seen_at, expires_at, created_at, created_by, updated_at,
-- not-null: updated_by, version
-- Revoke a session (of user_id, unless it is null) and audit it; return it.
-- A session revoked before comes back unchanged and is not audited again.
-- Nothing comes back when no such session exists. Nothing can fail.
WITH revoked AS (
    UPDATE app.sessions AS s
    SET
        revoked_at = now(),
        updated_by = :actor
    WHERE
        s.id = :id
        AND (:user_id::uuid IS NULL OR s.user_id = :user_id)
        AND s.revoked_at IS NULL
        AND s.deleted_at IS NULL
    RETURNING
        s.id,
        s.user_id,
        s.ip,
        s.user_agent,
        s.last_seen_at,
        s.expires_at,
        s.revoked_at,
        s.created_at,
        s.created_by,
        s.updated_at,
        s.updated_by,
        s.version
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'session.revoke' AS action,
        'session' AS entity_type,
        r.id::text AS entity_id,
        jsonb_build_object('revoked_at', NULL) AS before,
        jsonb_build_object('revoked_at', r.revoked_at) AS after
    FROM revoked AS r
)

SELECT
    r.id,
    r.user_id,
    r.ip,
    r.user_agent,
    r.last_seen_at,
    r.expires_at,
    r.revoked_at,
    r.created_at,
    r.created_by,
    r.updated_at,
    r.updated_by,
    r.version
FROM revoked AS r
UNION ALL
SELECT
    s.id,
    s.user_id,
    s.ip,
    s.user_agent,
    s.last_seen_at,
    s.expires_at,
    s.revoked_at,
    s.created_at,
    s.created_by,
    s.updated_at,
    s.updated_by,
    s.version
FROM app.sessions AS s
WHERE
    s.id = :id
    AND (:user_id::uuid IS NULL OR s.user_id = :user_id)
    AND s.revoked_at IS NOT NULL
    AND s.deleted_at IS NULL;

-- name: revoke_sessions_by_user_id(user_id, except_id, actor)$
-- Revoke every unrevoked, unexpired session of a user except except_id (null:
-- all), auditing each; return how many were revoked. Nothing can fail.
WITH revoked AS (
    UPDATE app.sessions AS s
    SET
        revoked_at = now(),
        updated_by = :actor
    WHERE
        s.user_id = :user_id
        AND s.id IS DISTINCT FROM :except_id::uuid
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
        'session.revoke' AS action,
        'session' AS entity_type,
        r.id::text AS entity_id,
        jsonb_build_object('revoked_at', NULL) AS before,
        jsonb_build_object('revoked_at', r.revoked_at) AS after
    FROM revoked AS r
)

SELECT count(*) FROM revoked;

-- name: delete_expired_sessions(older_than_seconds, actor)$
-- Delete sessions that expired or were revoked more than older_than_seconds
-- ago, auditing each; return how many were deleted. Nothing can fail.
-- Its bound is a parameter, so the generic plan assumes a third of the
-- table matches each arm and reads it all; called with a value, the plan
-- uses index_sessions_on_expires_at and index_sessions_on_revoked_at (a
-- BitmapOr) when few rows have expired.
-- seqscan-ok: the scheduled purge job (maintenance), not a request path
WITH purged AS (
    DELETE FROM app.sessions AS s
    WHERE
        s.expires_at <= now() - make_interval(secs => :older_than_seconds::double precision)
        OR s.revoked_at <= now() - make_interval(secs => :older_than_seconds::double precision)
    RETURNING
        s.id,
        s.user_id,
        s.expires_at,
        s.revoked_at
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before)
    SELECT
        :actor,
        'session.purge' AS action,
        'session' AS entity_type,
        p.id::text AS entity_id,
        jsonb_build_object(
            'id', p.id,
            'user_id', p.user_id,
            'expires_at', p.expires_at,
            'revoked_at', p.revoked_at
        ) AS before
    FROM purged AS p
)

SELECT count(*) FROM purged;
