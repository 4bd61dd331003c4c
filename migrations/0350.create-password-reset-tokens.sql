-- Password reset: a single-use, expiring token per user, kept apart from
-- app.users so that issuing one changes no user row (no version bump, no
-- lock on the account a stranger may be asking about). Only the token's
-- SHA-256 is stored, as for email verification. A user has at most one
-- outstanding token: issuing a new one replaces the old (the primary key is
-- user_id). Using a token deletes its row in the same statement that sets
-- the new password, so it works once; cleanup deletes expired rows.
-- depends: 0320.seal-audit-log 0330.create-row-security

CREATE TABLE app.password_reset_tokens (
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    CONSTRAINT pk_password_reset_tokens PRIMARY KEY (user_id),
    CONSTRAINT fk_password_reset_tokens_user_id_users FOREIGN KEY (user_id)
    REFERENCES app.users (id) ON DELETE CASCADE,
    CONSTRAINT unique_password_reset_tokens_token_hash UNIQUE (token_hash),
    CONSTRAINT check_password_reset_tokens_token_hash_sha256
    CHECK (octet_length(token_hash) = 32),
    CONSTRAINT check_password_reset_tokens_expires_after_creation
    CHECK (expires_at > created_at),
    CONSTRAINT check_password_reset_tokens_created_by_length
    CHECK (length(created_by) BETWEEN 1 AND 200)
);

-- Cleanup deletes expired tokens by expiry.
CREATE INDEX index_password_reset_tokens_on_expires_at
ON app.password_reset_tokens (expires_at);

COMMENT ON TABLE app.password_reset_tokens IS
'Outstanding password-reset tokens, at most one per user; deleted when used.';
COMMENT ON COLUMN app.password_reset_tokens.token_hash IS
'SHA-256 of the token sent to the user; the token itself is never stored.';
