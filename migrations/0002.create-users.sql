-- Users are the principals of every other table: they own projects, API keys
-- and sessions, and their username is what the audit trail records as actor.
-- Usernames and emails stay taken after a soft delete (plain unique
-- constraints, not partial indexes), so a deleted account's name cannot be
-- claimed by someone else and old audit entries keep one meaning.
-- depends: 0001.create-schema-app

CREATE TABLE app.users (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    username text NOT NULL,
    email text NOT NULL,
    full_name text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    is_active boolean NOT NULL DEFAULT TRUE,
    email_verified_at timestamptz,
    email_verification_token_hash bytea,
    email_verification_expires_at timestamptz,
    failed_login_count integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_login_at timestamptz,
    last_login_ip inet,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    deleted_at timestamptz,
    deleted_by text,
    CONSTRAINT pk_users PRIMARY KEY (id),
    CONSTRAINT unique_users_username UNIQUE (username),
    CONSTRAINT unique_users_email_verification_token_hash
    UNIQUE (email_verification_token_hash),
    CONSTRAINT check_users_username_shape
    CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$'),
    CONSTRAINT check_users_email_shape
    CHECK (length(email) <= 254 AND email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'),
    CONSTRAINT check_users_full_name_length CHECK (length(full_name) <= 200),
    CONSTRAINT check_users_password_hash_argon2
    CHECK (password_hash LIKE '$argon2%' AND length(password_hash) <= 512),
    CONSTRAINT check_users_email_verification_token_hash_sha256
    CHECK (octet_length(email_verification_token_hash) = 32),
    CONSTRAINT check_users_failed_login_count_not_negative CHECK (failed_login_count >= 0),
    CONSTRAINT check_users_actors_length CHECK (
        length(created_by) BETWEEN 1 AND 200
        AND length(updated_by) BETWEEN 1 AND 200
        AND length(deleted_by) BETWEEN 1 AND 200
    ),
    CONSTRAINT check_users_version_positive CHECK (version >= 1),
    CONSTRAINT check_users_deleted_by_with_deleted_at
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);

-- Emails are unique whatever their case: Ada@Example.org and ada@example.org
-- are one mailbox. Look-ups must say lower(email) = lower(:email) to use it.
CREATE UNIQUE INDEX unique_users_email_lower ON app.users (lower(email));

CREATE TRIGGER trigger_users_stamp_row
BEFORE INSERT OR UPDATE ON app.users
FOR EACH ROW EXECUTE FUNCTION app.stamp_row();

COMMENT ON TABLE app.users IS
'Accounts. Soft-deleted rows (deleted_at set) keep their username and email.';
COMMENT ON COLUMN app.users.username IS
'Case-sensitive, unique forever (also after soft delete); 3-32 of A-Z a-z 0-9 . _ -.';
COMMENT ON COLUMN app.users.email IS
'Stored as given; unique case-insensitively (unique_users_email_lower).';
COMMENT ON COLUMN app.users.password_hash IS 'argon2id PHC string; never plaintext.';
COMMENT ON COLUMN app.users.email_verification_token_hash IS
'SHA-256 of the emailed verification token; the token itself is never stored.';
COMMENT ON COLUMN app.users.failed_login_count IS
'Consecutive failed logins; reset on success. locked_until is set when it is too high.';
COMMENT ON COLUMN app.users.created_by IS 'Actor principal that created the row.';
COMMENT ON COLUMN app.users.version IS
'Optimistic lock: 1 on insert, +1 on every UPDATE (trigger_users_stamp_row).';
