-- Seed data for `vdata explain`: realistic volumes in every growing table, so
-- that plans are the ones production will get. Scale 1.0 gives 100k users,
-- 20k API keys, 200k sessions, 1M audit rows, 10k projects and 200k tasks;
-- the scale is read from the setting vdata.seed_scale.
--
-- Run as the owner on a database migrated to head, in one transaction. The
-- audit log's triggers (the hash chain and its head update) are disabled while
-- seeding: the chain is not what a plan depends on, and chaining 1M rows one
-- by one takes minutes. The rows get well-formed but unchained hashes, and the
-- triggers are enabled again before commit.
-- Other tables are picked by arithmetic on row numbers (seed_users,
-- seed_projects), so the data is the same on every run.

CREATE TEMPORARY TABLE seed_scale ON COMMIT DROP AS
SELECT
    greatest(10, (100000 * setting.s)::integer) AS n_users,
    greatest(2, (20000 * setting.s)::integer) AS n_api_keys,
    greatest(10, (200000 * setting.s)::integer) AS n_sessions,
    greatest(10, (1000000 * setting.s)::integer) AS n_audit,
    greatest(2, (10000 * setting.s)::integer) AS n_projects,
    greatest(10, (200000 * setting.s)::integer) AS n_tasks
FROM (SELECT current_setting('vdata.seed_scale')::numeric AS s) AS setting;

INSERT INTO app.users (
    username, email, full_name, password_hash, is_active, email_verified_at,
    failed_login_count, last_login_at, last_login_ip, created_at, created_by,
    deleted_at, deleted_by
)
SELECT
    'seed' || g.i AS username,
    'seed' || g.i || '@example.org' AS email,
    'Seed User ' || g.i AS full_name,
    '$argon2id$v=19$m=65536,t=3,p=4$c2VlZHNlZWQ$c2VlZHNlZWRzZWVkc2VlZA' AS password_hash,
    g.i % 50 != 0 AS is_active,
    CASE WHEN g.i % 10 < 7 THEN now() - make_interval(days => g.i % 700) END
        AS email_verified_at,
    g.i % 4 AS failed_login_count,
    CASE WHEN g.i % 3 != 0 THEN now() - make_interval(mins => g.i % 100000) END
        AS last_login_at,
    CASE WHEN g.i % 3 != 0 THEN '10.0.0.0'::inet + (g.i % 65536) END AS last_login_ip,
    now() - make_interval(days => g.i % 730) AS created_at,
    'seed' AS created_by,
    CASE WHEN g.i % 20 = 0 THEN now() - make_interval(days => g.i % 30) END AS deleted_at,
    CASE WHEN g.i % 20 = 0 THEN 'seed' END AS deleted_by
FROM seed_scale AS sc
CROSS JOIN generate_series(1, sc.n_users) AS g (i);

CREATE TEMPORARY TABLE seed_users ON COMMIT DROP AS
SELECT
    u.id,
    row_number() OVER (ORDER BY u.created_at, u.id) AS n
FROM app.users AS u;
CREATE UNIQUE INDEX ON seed_users (n);

INSERT INTO app.api_keys (
    user_id, name, prefix, secret_hash, scopes, expires_at, revoked_at,
    last_used_at, use_count, created_by
)
SELECT
    su.id AS user_id,
    'key ' || g.i AS name,
    'seed' || lpad(g.i::text, 10, '0') AS prefix,
    sha256(('api_key ' || g.i)::bytea) AS secret_hash,
    CASE WHEN g.i % 2 = 0 THEN '{read}'::text[] ELSE '{read,write}'::text[] END AS scopes,
    CASE WHEN g.i % 4 = 0 THEN now() + make_interval(days => g.i % 365 - 60) END AS expires_at,
    CASE WHEN g.i % 10 = 0 THEN now() - make_interval(days => g.i % 90) END AS revoked_at,
    now() - make_interval(mins => g.i % 50000) AS last_used_at,
    g.i % 1000 AS use_count,
    'seed' AS created_by
FROM seed_scale AS sc
CROSS JOIN generate_series(1, sc.n_api_keys) AS g (i)
INNER JOIN seed_users AS su ON su.n = 1 + (g.i::bigint * 7919) % sc.n_users;

INSERT INTO app.sessions (
    user_id, token_hash, ip, user_agent, last_seen_at, expires_at, revoked_at, created_by
)
SELECT
    su.id AS user_id,
    sha256(('session ' || g.i)::bytea) AS token_hash,
    '192.168.0.0'::inet + (g.i % 65536) AS ip,
    'Mozilla/5.0 (seed ' || g.i % 17 || ')' AS user_agent,
    now() - make_interval(mins => g.i % 20000) AS last_seen_at,
    now() + make_interval(hours => g.i % 720 - 360) AS expires_at,
    CASE WHEN g.i % 7 = 0 THEN now() - make_interval(hours => g.i % 100) END AS revoked_at,
    'seed' AS created_by
FROM seed_scale AS sc
CROSS JOIN generate_series(1, sc.n_sessions) AS g (i)
INNER JOIN seed_users AS su ON su.n = 1 + (g.i::bigint * 104729) % sc.n_users;

INSERT INTO app.projects (owner_id, name, description, is_public, archived_at, created_by)
SELECT
    su.id AS owner_id,
    'Project ' || g.i AS name,
    'Seeded project ' || g.i AS description,
    g.i % 5 = 0 AS is_public,
    CASE WHEN g.i % 11 = 0 THEN now() - make_interval(days => g.i % 200) END AS archived_at,
    'seed' AS created_by
FROM seed_scale AS sc
CROSS JOIN generate_series(1, sc.n_projects) AS g (i)
INNER JOIN seed_users AS su ON su.n = 1 + (g.i::bigint * 31) % sc.n_users;

CREATE TEMPORARY TABLE seed_projects ON COMMIT DROP AS
SELECT
    p.id,
    row_number() OVER (ORDER BY p.created_at, p.id) AS n
FROM app.projects AS p;
CREATE UNIQUE INDEX ON seed_projects (n);

INSERT INTO app.tasks (
    project_id, title, status, priority, assignee_id, due_at, completed_at, created_by
)
SELECT
    sp.id AS project_id,
    'Task ' || g.i AS title,
    (ARRAY['todo', 'in_progress', 'blocked', 'done', 'cancelled'])[1 + g.i % 5] AS status,
    g.i % 5 AS priority,
    CASE WHEN g.i % 3 != 0 THEN su.id END AS assignee_id,
    CASE WHEN g.i % 2 = 0 THEN now() + make_interval(days => g.i % 120 - 30) END AS due_at,
    CASE WHEN g.i % 5 = 3 THEN now() - make_interval(days => g.i % 60) END AS completed_at,
    'seed' AS created_by
FROM seed_scale AS sc
CROSS JOIN generate_series(1, sc.n_tasks) AS g (i)
INNER JOIN seed_projects AS sp ON sp.n = 1 + (g.i::bigint * 13) % sc.n_projects
INNER JOIN seed_users AS su ON su.n = 1 + (g.i::bigint * 7) % sc.n_users;

ALTER TABLE app.audit_log DISABLE TRIGGER USER;

INSERT INTO app.audit_log (
    id, occurred_at, actor, action, entity_type, entity_id, before, after, ip, request_id, row_hash
)
SELECT
    -- The chain trigger draws ids; with it off, the seed draws them itself.
    nextval('app.audit_log_id_seq'::regclass) AS id,
    now() - make_interval(secs => (g.i::bigint * 7919) % (90 * 86400)) AS occurred_at,
    'seed' || (1 + (g.i::bigint * 17) % sc.n_users) AS actor,
    (ARRAY['user.update', 'user.login', 'api_key.use', 'task.update', 'session.create'])[
        1 + g.i % 5
    ] AS action,
    (ARRAY['user', 'user', 'api_key', 'task', 'session'])[1 + g.i % 5] AS entity_type,
    su.id::text AS entity_id,
    jsonb_build_object('n', g.i) AS before,
    jsonb_build_object('n', g.i + 1) AS after,
    '172.16.0.0'::inet + (g.i % 65536) AS ip,
    'req-' || g.i AS request_id,
    sha256(('audit ' || g.i)::bytea) AS row_hash
FROM seed_scale AS sc
CROSS JOIN generate_series(1, sc.n_audit) AS g (i)
INNER JOIN seed_users AS su ON su.n = 1 + (g.i::bigint * 17) % sc.n_users;

ALTER TABLE app.audit_log ENABLE TRIGGER USER;
