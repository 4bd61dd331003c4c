-- API keys of users (app.api_keys). A key is vdk_<prefix>_<secret><checksum>;
-- the row holds the prefix (unique, indexed) and a 32-byte digest of the secret,
-- never the key. Every change writes its app.audit_log row in the same
-- statement; audit before/after list the public columns only (no digest).
-- Recording usage (last_used_at, use_count) is not audited: it is not a change
-- of the credential, and an audit row per request would serialise every
-- verification on the audit chain's head row.

-- name: insert_api_key(user_id, name, prefix, secret_hash, scopes, expires_at, actor)^
-- Issue a key for a user that is not deleted; return the new row, or nothing
-- when the user is absent or deleted, or (rarely) the prefix is taken
-- (unique_api_keys_prefix, absorbed by ON CONFLICT so that a caller may retry
-- with a new key inside a transaction). check_api_keys_name_length and
-- check_api_keys_scopes_shape -> ValidationError.
WITH new_key AS (
    INSERT INTO app.api_keys (
        user_id,
        name,
        prefix,
        secret_hash,
        scopes,
        expires_at,
        created_by,
        updated_by
    )
    SELECT
        u.id,
        :name,
        :prefix,
        :secret_hash,
        :scopes::text[],
        :expires_at::timestamptz,
        :actor AS created_by,
        :actor AS updated_by
    FROM app.users AS u
    WHERE
        u.id = :user_id
        AND u.deleted_at IS NULL
    ON CONFLICT ON CONSTRAINT unique_api_keys_prefix DO NOTHING
    RETURNING
        id,
        user_id,
        name,
        prefix,
        scopes,
        expires_at,
        revoked_at,
        last_used_at,
        use_count,
        rotated_from_id,
        created_at,
        created_by,
        updated_at,
        updated_by,
        version
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after)
    SELECT
        :actor,
        'api_key.issue' AS action,
        'api_key' AS entity_type,
        n.id::text AS entity_id,
        jsonb_build_object(
            'id', n.id,
            'user_id', n.user_id,
            'name', n.name,
            'prefix', n.prefix,
            'scopes', n.scopes,
            'expires_at', n.expires_at
        ) AS after
    FROM new_key AS n
)

SELECT
    n.id,
    n.user_id,
    n.name,
    n.prefix,
    n.scopes,
    n.expires_at,
    n.revoked_at,
    n.last_used_at,
    n.use_count,
    n.rotated_from_id,
    n.created_at,
    n.created_by,
    n.updated_at,
    n.updated_by,
    n.version
FROM new_key AS n;

-- name: use_api_key(prefix, secret_hash)^
-- Verify a key and record its use in one statement: return the key row with
-- use_count + 1 and last_used_at = now(), or nothing when no usable key has
-- this prefix and digest (unknown, wrong secret, revoked, deleted, expired,
-- or its owner inactive or deleted); the use is also added to the key's row
-- of the UTC day in app.api_key_usage_days. The digest is compared here, in
-- SQL: it is an HMAC of a 256-bit random secret, so timing that reveals how
-- much of a digest matched helps no one find a secret. Nothing can fail.
WITH
used AS (
    UPDATE app.api_keys AS k
    SET
        last_used_at = now(),
        use_count = k.use_count + 1
    FROM app.users AS u
    WHERE
        k.prefix = :prefix
        AND k.secret_hash = :secret_hash
        AND k.revoked_at IS NULL
        AND k.deleted_at IS NULL
        AND (k.expires_at IS NULL OR k.expires_at > now())
        AND u.id = k.user_id
        AND u.is_active
        AND u.deleted_at IS NULL
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
        k.version
),

daily AS (
    INSERT INTO app.api_key_usage_days AS d (api_key_id, used_on, uses, last_used_at)
    SELECT
        u.id AS api_key_id,
        (u.last_used_at AT TIME ZONE 'UTC')::date AS used_on,
        1 AS uses,
        u.last_used_at
    FROM used AS u
    ON CONFLICT ON CONSTRAINT pk_api_key_usage_days DO UPDATE
        SET
            uses = d.uses + excluded.uses,
            last_used_at = greatest(d.last_used_at, excluded.last_used_at)
)

SELECT
    u.id,
    u.user_id,
    u.name,
    u.prefix,
    u.scopes,
    u.expires_at,
    u.revoked_at,
    u.last_used_at,
    u.use_count,
    u.rotated_from_id,
    u.created_at,
    u.created_by,
    u.updated_at,
    u.updated_by,
    u.version
FROM used AS u;

-- name: get_usable_api_key(prefix, secret_hash)^
-- Return the usable key with this prefix and digest, or nothing (unknown,
-- wrong secret, revoked, deleted, expired, or its owner inactive or
-- deleted). The pooled verify path: a read, with usage counted in the client
-- and written in batches by record_api_key_usage. Digest equality in SQL is
-- safe for the reason given at use_api_key. Nothing can fail.
SELECT
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
    k.version
FROM app.api_keys AS k
WHERE
    k.prefix = :prefix
    AND k.secret_hash = :secret_hash
    AND k.revoked_at IS NULL
    AND k.deleted_at IS NULL
    AND (k.expires_at IS NULL OR k.expires_at > now())
    AND EXISTS (
        SELECT FROM app.users AS u
        WHERE
            u.id = k.user_id
            AND u.is_active
            AND u.deleted_at IS NULL
    );

-- name: record_api_key_usage(ids, uses)$
-- Add uses[i] to the use_count of key ids[i] and set last_used_at = now(),
-- and add the same uses to each key's row of the UTC day in
-- app.api_key_usage_days; return how many keys were updated (a key deleted
-- meanwhile is skipped). Callers pass ids sorted and unique, so that
-- concurrent batches lock rows in the same order and cannot deadlock.
-- Nothing can fail.
WITH
batch AS (
    SELECT
        b.id,
        b.uses
    FROM unnest(:ids::uuid[], :uses::bigint[]) AS b (id, uses)
),

counted AS (
    UPDATE app.api_keys AS k
    SET
        use_count = k.use_count + batch.uses,
        last_used_at = now()
    FROM batch
    WHERE k.id = batch.id
    RETURNING
        k.id,
        k.last_used_at,
        batch.uses
),

daily AS (
    INSERT INTO app.api_key_usage_days AS d (api_key_id, used_on, uses, last_used_at)
    SELECT
        c.id AS api_key_id,
        (c.last_used_at AT TIME ZONE 'UTC')::date AS used_on,
        c.uses,
        c.last_used_at
    FROM counted AS c
    ON CONFLICT ON CONSTRAINT pk_api_key_usage_days DO UPDATE
        SET
            uses = d.uses + excluded.uses,
            last_used_at = greatest(d.last_used_at, excluded.last_used_at)
)

SELECT count(*) FROM counted;

-- name: get_api_key_by_id(id)^
-- Return one key that is not deleted (revoked and expired ones included), or
-- nothing.
SELECT
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
    k.version
FROM app.api_keys AS k
WHERE
    k.id = :id
    AND k.deleted_at IS NULL;

-- name: list_api_keys_by_user_id(user_id, usable_only)
-- Return a user's keys that are not deleted, oldest first; with usable_only,
-- only those neither revoked nor expired. No digest is selected.
SELECT
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
    k.version
FROM app.api_keys AS k
WHERE
    k.user_id = :user_id
    AND k.deleted_at IS NULL
    AND (
        NOT :usable_only::boolean
        OR (k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()))
    )
ORDER BY
    k.created_at ASC,
    k.id ASC;

-- name: revoke_api_key(id, user_id, actor)^
-- not-null: id, user_id, name, prefix, scopes, use_count, created_at, created_by,
-- not-null: updated_at, updated_by, version
-- Revoke a key (of user_id, unless it is null) and audit it; return the key.
-- A key revoked before comes back unchanged and is not audited again.
-- Nothing comes back when no such key exists. Nothing can fail.
WITH revoked AS (
    UPDATE app.api_keys AS k
    SET
        revoked_at = now(),
        updated_by = :actor
    WHERE
        k.id = :id
        AND (:user_id::uuid IS NULL OR k.user_id = :user_id)
        AND k.revoked_at IS NULL
        AND k.deleted_at IS NULL
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
        k.version
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'api_key.revoke' AS action,
        'api_key' AS entity_type,
        r.id::text AS entity_id,
        jsonb_build_object('revoked_at', NULL) AS before,
        jsonb_build_object('revoked_at', r.revoked_at) AS after
    FROM revoked AS r
)

SELECT
    r.id,
    r.user_id,
    r.name,
    r.prefix,
    r.scopes,
    r.expires_at,
    r.revoked_at,
    r.last_used_at,
    r.use_count,
    r.rotated_from_id,
    r.created_at,
    r.created_by,
    r.updated_at,
    r.updated_by,
    r.version
FROM revoked AS r
UNION ALL
SELECT
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
    k.version
FROM app.api_keys AS k
WHERE
    k.id = :id
    AND (:user_id::uuid IS NULL OR k.user_id = :user_id)
    AND k.revoked_at IS NOT NULL
    AND k.deleted_at IS NULL;

-- name: rotate_api_key(id, prefix, secret_hash, expires_at, grace_seconds, actor)^
-- Replace a usable key: the old one now expires at the earlier of its own
-- expiry and now() + grace_seconds; the new one gets the old name, scopes and
-- owner, rotated_from_id = the old id, and expires_at. Both changes are
-- audited. Return the new key, or nothing when the old key is not usable
-- (unknown, revoked, expired, deleted) or, rarely, the new prefix is taken
-- (unique_api_keys_prefix, absorbed so that the caller can retry).
WITH old_key AS (
    UPDATE app.api_keys AS k
    SET
        expires_at = least(
            coalesce(prev.expires_at, 'infinity'::timestamptz),
            now() + make_interval(secs => :grace_seconds::double precision)
        ),
        updated_by = :actor
    FROM app.api_keys AS prev
    WHERE
        k.id = :id
        AND prev.id = k.id
        AND k.revoked_at IS NULL
        AND k.deleted_at IS NULL
        AND (k.expires_at IS NULL OR k.expires_at > now())
        AND NOT EXISTS (
            SELECT FROM app.api_keys AS taken
            WHERE taken.prefix = :prefix
        )
    RETURNING
        k.id,
        k.user_id,
        k.name,
        k.scopes,
        k.expires_at,
        prev.expires_at AS previous_expires_at
),

new_key AS (
    INSERT INTO app.api_keys (
        user_id,
        name,
        prefix,
        secret_hash,
        scopes,
        expires_at,
        rotated_from_id,
        created_by,
        updated_by
    )
    SELECT
        o.user_id,
        o.name,
        :prefix,
        :secret_hash,
        o.scopes,
        :expires_at::timestamptz,
        o.id,
        :actor AS created_by,
        :actor AS updated_by
    FROM old_key AS o
    ON CONFLICT ON CONSTRAINT unique_api_keys_prefix DO NOTHING
    RETURNING
        id,
        user_id,
        name,
        prefix,
        scopes,
        expires_at,
        revoked_at,
        last_used_at,
        use_count,
        rotated_from_id,
        created_at,
        created_by,
        updated_at,
        updated_by,
        version
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        n.created_by AS actor,
        'api_key.rotate' AS action,
        'api_key' AS entity_type,
        o.id::text AS entity_id,
        jsonb_build_object('expires_at', o.previous_expires_at) AS before,
        jsonb_build_object('expires_at', o.expires_at, 'replaced_by', n.id) AS after
    FROM old_key AS o
    INNER JOIN new_key AS n ON o.id = n.rotated_from_id
    UNION ALL
    SELECT
        n.created_by AS actor,
        'api_key.issue' AS action,
        'api_key' AS entity_type,
        n.id::text AS entity_id,
        NULL AS before,
        jsonb_build_object(
            'id', n.id,
            'user_id', n.user_id,
            'name', n.name,
            'prefix', n.prefix,
            'scopes', n.scopes,
            'expires_at', n.expires_at,
            'rotated_from_id', n.rotated_from_id
        ) AS after
    FROM new_key AS n
)

SELECT
    n.id,
    n.user_id,
    n.name,
    n.prefix,
    n.scopes,
    n.expires_at,
    n.revoked_at,
    n.last_used_at,
    n.use_count,
    n.rotated_from_id,
    n.created_at,
    n.created_by,
    n.updated_at,
    n.updated_by,
    n.version
FROM new_key AS n;

-- name: delete_expired_api_keys(older_than_seconds, actor)$
-- Delete keys that expired more than older_than_seconds ago, auditing each;
-- return how many were deleted. Keys rotated from them keep working
-- (fk_api_keys_rotated_from_id_api_keys sets their rotated_from_id to null).
-- api_keys is the smallest growing table (keys per user, not per request);
-- an index on expires_at would cost every key write for one periodic scan.
-- seqscan-ok: the scheduled purge job (maintenance), not a request path
WITH purged AS (
    DELETE FROM app.api_keys AS k
    WHERE k.expires_at <= now() - make_interval(secs => :older_than_seconds::double precision)
    RETURNING
        k.id,
        k.user_id,
        k.name,
        k.prefix,
        k.expires_at
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
            'expires_at', p.expires_at
        ) AS before
    FROM purged AS p
)

SELECT count(*) FROM purged;

-- name: get_api_key_usage_by_user_id(user_id)^
-- not-null: user_id, key_count, usable_key_count, total_uses
-- Return usage totals over a user's keys that are not deleted (always one
-- row; zeros and nulls for a user with no keys).
SELECT
    :user_id::uuid AS user_id,
    count(k.id) AS key_count,
    count(k.id) FILTER (
        WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
    ) AS usable_key_count,
    coalesce(sum(k.use_count), 0)::bigint AS total_uses,
    max(k.last_used_at) AS last_used_at
FROM app.api_keys AS k
WHERE
    k.user_id = :user_id
    AND k.deleted_at IS NULL;
