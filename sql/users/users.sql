-- Users, read side: look-ups and listings. Writes are in user_writes.sql and
-- user_logins.sql (one folder = one aiosql namespace, split for size).
-- Rows map positionally onto vdata.models.users.User (column order = field
-- order): reads select the view app.user_rows (migration 0310), which holds
-- exactly those columns in that order; `vdata check` compares them with the
-- Struct. password_hash never leaves the database except through
-- get_user_credentials_* (vdata.models.users.Credentials, for login checks).
-- `-- noqa: PRS` on OFFSET: sqlfluff's placeholder templater renders the
-- parameter :offset as the keyword OFFSET, which it cannot parse.

-- name: get_user_by_id(id)^
-- Return one live (not soft-deleted) user by primary key, or nothing.
SELECT u.*
FROM app.user_rows AS u
WHERE
    u.id = :id
    AND u.deleted_at IS NULL;

-- name: get_user_by_username(username)^
-- Return one live user by exact (case-sensitive) username, or nothing.
SELECT u.*
FROM app.user_rows AS u
WHERE
    u.username = :username
    AND u.deleted_at IS NULL;

-- name: get_user_by_email(email)^
-- Return one live user by email, compared case-insensitively (uses
-- unique_users_email_lower), or nothing.
SELECT u.*
FROM app.user_rows AS u
WHERE
    lower(u.email) = lower(:email)
    AND u.deleted_at IS NULL;

-- name: get_user_version(id)$
-- Return the version of the live user id, or nothing (optimistic-lock probe).
SELECT u.version
FROM app.users AS u
WHERE
    u.id = :id
    AND u.deleted_at IS NULL;

-- name: get_user_credentials_by_login(login)^
-- not-null: is_locked
-- Return what a login check needs (including password_hash) for the live user
-- whose username is login, or whose email is login case-insensitively.
-- Usernames cannot contain '@', so at most one row matches.
SELECT
    u.id,
    u.username,
    u.password_hash,
    u.is_active,
    u.locked_until,
    coalesce(u.locked_until > now(), FALSE) AS is_locked
FROM app.users AS u
WHERE
    (u.username = :login OR lower(u.email) = lower(:login))
    AND u.deleted_at IS NULL;

-- name: get_user_credentials_by_id(id)^
-- not-null: is_locked
-- Return what a password check needs (including password_hash) for the live
-- user id, or nothing.
SELECT
    u.id,
    u.username,
    u.password_hash,
    u.is_active,
    u.locked_until,
    coalesce(u.locked_until > now(), FALSE) AS is_locked
FROM app.users AS u
WHERE
    u.id = :id
    AND u.deleted_at IS NULL;

-- name: list_users_by_created_at(active, verified, search, with_deleted, offset, page_size)
-- Return one offset page of users, oldest first. Optional filters: active,
-- verified (email), search (prefix of username or email, case-insensitive),
-- with_deleted.
SELECT u.*
FROM app.user_rows AS u
WHERE
    (:with_deleted::boolean OR u.deleted_at IS NULL)
    AND (:active::boolean IS NULL OR u.is_active = :active::boolean)
    AND (:verified::boolean IS NULL OR (u.email_verified_at IS NOT NULL) = :verified::boolean)
    AND (
        :search::text IS NULL
        OR starts_with(lower(u.username), lower(:search::text))
        OR starts_with(lower(u.email), lower(:search::text))
    )
ORDER BY u.created_at, u.id
LIMIT :page_size
OFFSET :offset; -- noqa: PRS

-- name: list_users_by_username(active, verified, search, with_deleted, offset, page_size)
-- Return one offset page of users in username order; filters as
-- list_users_by_created_at.
SELECT u.*
FROM app.user_rows AS u
WHERE
    (:with_deleted::boolean OR u.deleted_at IS NULL)
    AND (:active::boolean IS NULL OR u.is_active = :active::boolean)
    AND (:verified::boolean IS NULL OR (u.email_verified_at IS NOT NULL) = :verified::boolean)
    AND (
        :search::text IS NULL
        OR starts_with(lower(u.username), lower(:search::text))
        OR starts_with(lower(u.email), lower(:search::text))
    )
ORDER BY u.username
LIMIT :page_size
OFFSET :offset; -- noqa: PRS

-- name: count_users(active, verified, search, with_deleted)$
-- Return how many users the list_users_* filters match across all pages.
-- Counting every user the filters (active, verified, a prefix of username
-- or email) match reads each of them whatever the index; paging through
-- users on a hot path is list_after, which counts nothing.
-- seqscan-ok: the total of users.list_page, an admin listing, not a hot path
SELECT count(*) AS total
FROM app.users AS u
WHERE
    (:with_deleted::boolean OR u.deleted_at IS NULL)
    AND (:active::boolean IS NULL OR u.is_active = :active::boolean)
    AND (:verified::boolean IS NULL OR (u.email_verified_at IS NOT NULL) = :verified::boolean)
    AND (
        :search::text IS NULL
        OR starts_with(lower(u.username), lower(:search::text))
        OR starts_with(lower(u.email), lower(:search::text))
    );

-- name: list_users_after(active, verified, search, with_deleted, after_time, after_id, page_size)
-- Return up to page_size users after the keyset position (created_at, id),
-- oldest first; a null position starts at the beginning. Filters as
-- list_users_by_created_at.
SELECT u.*
FROM app.user_rows AS u
WHERE
    (:with_deleted::boolean OR u.deleted_at IS NULL)
    AND (:active::boolean IS NULL OR u.is_active = :active::boolean)
    AND (:verified::boolean IS NULL OR (u.email_verified_at IS NOT NULL) = :verified::boolean)
    AND (
        :search::text IS NULL
        OR starts_with(lower(u.username), lower(:search::text))
        OR starts_with(lower(u.email), lower(:search::text))
    )
    AND (
        :after_time::timestamptz IS NULL
        OR (u.created_at, u.id) > (:after_time::timestamptz, :after_id::uuid)
    )
ORDER BY u.created_at, u.id
LIMIT :page_size;
