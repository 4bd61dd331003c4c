-- Credentials other than the password: API keys and sessions. An API key lets a
-- program act for a user. A key is prefix + secret: the prefix
-- is public and finds the row in one index probe, the secret is stored only
-- as a SHA-256 (or HMAC-SHA-256) digest and compared in constant time.
-- depends: 0003.create-access-control

CREATE TABLE app.api_keys (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    name text NOT NULL,
    prefix text NOT NULL,
    secret_hash bytea NOT NULL,
    scopes text[] NOT NULL DEFAULT '{}',
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    use_count bigint NOT NULL DEFAULT 0,
    rotated_from_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    deleted_at timestamptz,
    deleted_by text,
    CONSTRAINT pk_api_keys PRIMARY KEY (id),
    CONSTRAINT fk_api_keys_user_id_users FOREIGN KEY (user_id)
    REFERENCES app.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_api_keys_rotated_from_id_api_keys FOREIGN KEY (rotated_from_id)
    REFERENCES app.api_keys (id) ON DELETE SET NULL,
    CONSTRAINT unique_api_keys_prefix UNIQUE (prefix),
    CONSTRAINT check_api_keys_name_length CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT check_api_keys_prefix_shape CHECK (prefix ~ '^[A-Za-z0-9_-]{4,64}$'),
    CONSTRAINT check_api_keys_secret_hash_sha256 CHECK (octet_length(secret_hash) = 32),
    CONSTRAINT check_api_keys_scopes_shape CHECK (
        cardinality(scopes) <= 64
        AND array_position(scopes, NULL) IS NULL
        AND length(array_to_string(scopes, ' ')) <= 10000
    ),
    CONSTRAINT check_api_keys_use_count_not_negative CHECK (use_count >= 0),
    CONSTRAINT check_api_keys_not_rotated_from_itself CHECK (rotated_from_id != id),
    CONSTRAINT check_api_keys_actors_length CHECK (
        length(created_by) BETWEEN 1 AND 200
        AND length(updated_by) BETWEEN 1 AND 200
        AND length(deleted_by) BETWEEN 1 AND 200
    ),
    CONSTRAINT check_api_keys_version_positive CHECK (version >= 1),
    CONSTRAINT check_api_keys_deleted_by_with_deleted_at
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);

CREATE INDEX index_api_keys_on_user_id ON app.api_keys (user_id);

CREATE INDEX index_api_keys_on_rotated_from_id ON app.api_keys (rotated_from_id);

CREATE TRIGGER trigger_api_keys_stamp_row
BEFORE INSERT OR UPDATE ON app.api_keys
FOR EACH ROW EXECUTE FUNCTION app.stamp_row();

COMMENT ON TABLE app.api_keys IS
'Programmatic credentials of a user. Usable while revoked_at, deleted_at are null
and expires_at is null or in the future.';
COMMENT ON COLUMN app.api_keys.prefix IS
'Public first part of the key, unique forever; finds the row without the secret.';
COMMENT ON COLUMN app.api_keys.secret_hash IS
'32-byte SHA-256 (or HMAC-SHA-256) of the secret part; the key is never stored.';
COMMENT ON COLUMN app.api_keys.rotated_from_id IS 'The key this one replaced, if any.';

CREATE TABLE app.sessions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    ip inet,
    user_agent text,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    deleted_at timestamptz,
    deleted_by text,
    CONSTRAINT pk_sessions PRIMARY KEY (id),
    CONSTRAINT fk_sessions_user_id_users FOREIGN KEY (user_id)
    REFERENCES app.users (id) ON DELETE CASCADE,
    CONSTRAINT unique_sessions_token_hash UNIQUE (token_hash),
    CONSTRAINT check_sessions_token_hash_sha256 CHECK (octet_length(token_hash) = 32),
    CONSTRAINT check_sessions_user_agent_length CHECK (length(user_agent) <= 1000),
    CONSTRAINT check_sessions_actors_length CHECK (
        length(created_by) BETWEEN 1 AND 200
        AND length(updated_by) BETWEEN 1 AND 200
        AND length(deleted_by) BETWEEN 1 AND 200
    ),
    CONSTRAINT check_sessions_version_positive CHECK (version >= 1),
    CONSTRAINT check_sessions_deleted_by_with_deleted_at
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);

CREATE INDEX index_sessions_on_user_id ON app.sessions (user_id);

-- Purging expired sessions scans by expiry.
CREATE INDEX index_sessions_on_expires_at ON app.sessions (expires_at);

CREATE TRIGGER trigger_sessions_stamp_row
BEFORE INSERT OR UPDATE ON app.sessions
FOR EACH ROW EXECUTE FUNCTION app.stamp_row();

COMMENT ON TABLE app.sessions IS
'Interactive log-ins. Valid while revoked_at, deleted_at are null and expires_at is ahead.';
COMMENT ON COLUMN app.sessions.token_hash IS
'32-byte SHA-256 of the session token held by the client; the token is never stored.';
