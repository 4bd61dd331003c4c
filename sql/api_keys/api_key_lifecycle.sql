-- API keys: soft delete and restore (its undo). Deleting a key revokes it;
-- restoring lists it again, still revoked: undoing a delete must not bring
-- a credential back to life (issue a new key for that). Prefixes are unique
-- forever, so a restore never conflicts. The digest (secret_hash) is kept
-- out of the audit rows.

-- name: soft_delete_api_key(id, user_id, expected_version, actor)^
-- Soft-delete a live key (of user_id, unless it is null), at
-- expected_version unless it is null, revoking it too if it was not; with
-- its api_key.soft_delete audit event; return it, or nothing.
WITH target AS (
    SELECT k.*
    FROM app.api_keys AS k
    WHERE
        k.id = :id
        AND (:user_id::uuid IS NULL OR k.user_id = :user_id::uuid)
        AND k.deleted_at IS NULL
        AND (:expected_version::integer IS NULL OR k.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.api_keys AS k
    SET
        deleted_at = now(),
        deleted_by = :actor,
        revoked_at = coalesce(k.revoked_at, now()),
        updated_by = :actor
    FROM target AS t
    WHERE k.id = t.id
    RETURNING
        k.*,
        to_jsonb(t) - 'secret_hash' AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'api_key.soft_delete' AS action,
        'api_key' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' - 'secret_hash' AS after
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

-- name: restore_api_key(id, user_id, expected_version, actor)^
-- Undo the soft delete of a key (of user_id, unless it is null), at
-- expected_version unless it is null, with its api_key.restore audit event;
-- return it, or nothing. It stays revoked: a restored key is listed again
-- but never authenticates. The prefix stayed taken (unique_api_keys_prefix
-- is not partial), so a restore never conflicts.
WITH target AS (
    SELECT k.*
    FROM app.api_keys AS k
    WHERE
        k.id = :id
        AND (:user_id::uuid IS NULL OR k.user_id = :user_id::uuid)
        AND k.deleted_at IS NOT NULL
        AND (:expected_version::integer IS NULL OR k.version = :expected_version::integer)
    FOR UPDATE
),

changed AS (
    UPDATE app.api_keys AS k
    SET
        deleted_at = NULL,
        deleted_by = NULL,
        updated_by = :actor
    FROM target AS t
    WHERE k.id = t.id
    RETURNING
        k.*,
        to_jsonb(t) - 'secret_hash' AS before_row
),

audit AS (
    INSERT INTO app.audit_log (actor, action, entity_type, entity_id, before, after)
    SELECT
        :actor,
        'api_key.restore' AS action,
        'api_key' AS entity_type,
        c.id::text AS entity_id,
        c.before_row AS before,
        to_jsonb(c) - 'before_row' - 'secret_hash' AS after
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

-- name: get_api_key_version(id, user_id, deleted)$
-- Return the version of key id (of user_id, unless it is null) that is
-- soft-deleted (deleted) or live (not deleted), or nothing: why a soft
-- delete or restore touched no row.
SELECT k.version
FROM app.api_keys AS k
WHERE
    k.id = :id
    AND (:user_id::uuid IS NULL OR k.user_id = :user_id::uuid)
    AND (k.deleted_at IS NOT NULL) = :deleted::boolean;
