-- API keys after issue: changing name and scopes, per-day usage history,
-- refused keys in the audit trail, and what cleanup deletes. Every change
-- writes its app.audit_log row in the same statement (public columns only,
-- never the digest).

-- name: update_api_key(id, expected_version, name, scopes, actor)^
-- Change the name and/or scopes (null: keep) of the key id, neither revoked
-- nor deleted, if it is still at expected_version; audit api_key.update with
-- the old and new values. Return the key, or nothing (absent, revoked,
-- deleted, or stale version: get_live_api_key_version tells which).
-- check_api_keys_name_length, check_api_keys_scopes_shape -> ValidationError.
WITH
target AS (
    SELECT
        k.id,
        k.name,
        k.scopes
    FROM app.api_keys AS k
    WHERE
        k.id = :id
        AND k.version = :expected_version
        AND k.revoked_at IS NULL
        AND k.deleted_at IS NULL
    FOR UPDATE
),

changed AS (
    UPDATE app.api_keys AS k
    SET
        name = coalesce(:name::text, k.name),
        scopes = coalesce(:scopes::text[], k.scopes),
        updated_by = :actor
    FROM target AS t
    WHERE k.id = t.id
    RETURNING
        k.id,
        k.user_id,
        k.name,
        k.prefix,
        k.scopes,
        k.expires_at,
        k.revoked_at,
        k.last_used_at,
        k.use_count,
        k.rotated_from_id,
        k.created_at,
        k.created_by,
        k.updated_at,
        k.updated_by,
        k.version,
        t.name AS before_name,
        t.scopes AS before_scopes
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'api_key.update' AS action,
        'api_key' AS entity_type,
        c.id::text AS entity_id,
        jsonb_build_object('name', c.before_name, 'scopes', c.before_scopes) AS before,
        jsonb_build_object('name', c.name, 'scopes', c.scopes, 'version', c.version) AS after
    FROM changed AS c
)

SELECT
    c.id,
    c.user_id,
    c.name,
    c.prefix,
    c.scopes,
    c.expires_at,
    c.revoked_at,
    c.last_used_at,
    c.use_count,
    c.rotated_from_id,
    c.created_at,
    c.created_by,
    c.updated_at,
    c.updated_by,
    c.version
FROM changed AS c;

-- name: get_live_api_key_version(id)$
-- Return the version of the key id if it is neither revoked nor deleted, or
-- nothing (what update_api_key may change).
SELECT k.version
FROM app.api_keys AS k
WHERE
    k.id = :id
    AND k.revoked_at IS NULL
    AND k.deleted_at IS NULL;

-- name: list_api_key_usage_days(id, since, until)
-- not-null: used_on, uses, last_used_at
-- Return the uses of the key id per UTC day in [since, until) (null:
-- unbounded), oldest day first; days without a use have no row. Reads the
-- primary key pk_api_key_usage_days.
SELECT
    d.api_key_id,
    d.used_on,
    d.uses,
    d.last_used_at
FROM app.api_key_usage_days AS d
WHERE
    d.api_key_id = :id
    AND d.used_on >= coalesce(:since::date, '-infinity'::date)
    AND d.used_on < coalesce(:until::date, 'infinity'::date)
ORDER BY d.used_on;

-- name: record_api_key_refusal(prefix, secret_hash, reason)$
-- Audit a refused use of the existing key with this prefix as
-- api_key.refuse (actor vdk_<prefix>), with the reason: the given reason
-- (e.g. missing_scope) or, when null, the first of wrong_secret, deleted,
-- revoked, expired, owner_inactive that holds. Return how many rows were
-- written: 0 for a prefix no key has, which is not recorded (an unknown
-- prefix names no key to review, and guessing prefixes must not buy writes).
-- Nothing can fail.
WITH
refused AS (
    SELECT
        k.id,
        k.user_id,
        k.prefix,
        CASE
            WHEN :reason::text IS NOT NULL THEN :reason::text
            WHEN k.secret_hash != :secret_hash THEN 'wrong_secret'
            WHEN k.deleted_at IS NOT NULL THEN 'deleted'
            WHEN k.revoked_at IS NOT NULL THEN 'revoked'
            WHEN k.expires_at <= now() THEN 'expired'
            ELSE 'owner_inactive'
        END AS reason
    FROM app.api_keys AS k
    WHERE k.prefix = :prefix
),

audited AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after)
    SELECT
        'vdk_' || r.prefix AS actor,
        'api_key.refuse' AS action,
        'api_key' AS entity_type,
        r.id::text AS entity_id,
        jsonb_build_object(
            'user_id', r.user_id,
            'prefix', r.prefix,
            'reason', r.reason
        ) AS after
    FROM refused AS r
    RETURNING entity_id
)

SELECT count(*) FROM audited;

-- name: count_expired_api_keys(older_than_seconds)$
-- Return how many keys expired more than older_than_seconds ago (what
-- delete_expired_api_keys would delete).
-- seqscan-ok: cleanup (maintenance), not a request path
SELECT count(*)
FROM app.api_keys AS k
WHERE k.expires_at <= now() - make_interval(secs => :older_than_seconds::double precision);

-- name: count_revoked_api_keys(older_than_seconds)$
-- Return how many keys were revoked more than older_than_seconds ago (what
-- delete_revoked_api_keys would delete).
-- seqscan-ok: cleanup (maintenance), not a request path
SELECT count(*)
FROM app.api_keys AS k
WHERE k.revoked_at <= now() - make_interval(secs => :older_than_seconds::double precision);

-- name: delete_revoked_api_keys(older_than_seconds, actor)$
-- Delete keys revoked more than older_than_seconds ago, auditing each as
-- api_key.purge; return how many were deleted. Their usage history goes
-- with them (fk_api_key_usage_days_api_key_id_api_keys cascades); keys
-- rotated from them keep working (rotated_from_id set to null).
-- seqscan-ok: cleanup (maintenance), not a request path
WITH purged AS (
    DELETE FROM app.api_keys AS k
    WHERE k.revoked_at <= now() - make_interval(secs => :older_than_seconds::double precision)
    RETURNING
        k.id,
        k.user_id,
        k.name,
        k.prefix,
        k.revoked_at
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before)
    SELECT
        :actor,
        'api_key.purge' AS action,
        'api_key' AS entity_type,
        p.id::text AS entity_id,
        jsonb_build_object(
            'id', p.id,
            'user_id', p.user_id,
            'name', p.name,
            'prefix', p.prefix,
            'revoked_at', p.revoked_at
        ) AS before
    FROM purged AS p
)

SELECT count(*) FROM purged;
