-- Seed data for `vdata explain --analyze`: realistic volumes in every growing
-- table, so that plans are the ones production will get. Scale 1.0 gives
-- 100k users, 20k API keys, 200k sessions, 1M audit rows, 10k projects and
-- 200k tasks; the scale is read from the setting vdata.seed_scale.
--
-- Run as the owner on a database migrated to head, in one transaction. The
-- audit hash chain trigger is disabled while seeding (the chain is not what a
-- plan depends on, and a row-by-row chain of 1M rows takes minutes); the rows
-- get well-formed but unchained hashes, and the trigger is enabled again.

CREATE TEMPORARY TABLE seed_scale ON COMMIT DROP AS
SELECT
    greatest(10, (100000 * s)::integer) AS users,
    greatest(2, (20000 * s)::integer) AS api_keys,
    greatest(10, (200000 * s)::integer) AS sessions,
    greatest(10, (1000000 * s)::integer) AS audit,
    greatest(2, (10000 * s)::integer) AS projects,
    greatest(10, (200000 * s)::integer) AS tasks
FROM (SELECT current_setting('vdata.seed_scale')::numeric AS s) AS setting;

INSERT INTO app.users (
    username, email, full_name, password_hash, is_active, email_verified_at,
    failed_login_count, last_login_at, last_login_ip, created_at, created_by,
    deleted_at, deleted_by
)
SELECT
    'seed' || i,
    'seed' || i || '@example.org',
    'Seed User ' || i,
    '$argon2id$v=19$m=65536,t=3,p=4$c2VlZHNlZWQ$c2VlZHNlZWRzZWVkc2VlZA',
    i % 50 <> 0,
    CASE WHEN i % 10 < 7 THEN now() - make_interval(days => i % 700) END,
    i % 4,
    CASE WHEN i % 3 <> 0 THEN now() - make_interval(mins => i % 100000) END,
    CASE WHEN i % 3 <> 0 THEN ('10.0.0.0'::inet + (i % 65536)) END,
    now() - make_interval(days => i % 730),
    'seed',
    CASE WHEN i % 20 = 0 THEN now() - make_interval(days => i % 30) END,
    CASE WHEN i % 20 = 0 THEN 'seed' END
FROM generate_series(1, (SELECT users FROM seed_scale)) AS i;

-- Users numbered 1..n, so that other tables can pick one by arithmetic.
CREATE TEMPORARY TABLE seed_users ON COMMIT DROP AS
SELECT
    row_number() OVER (ORDER BY u.created_at, u.id) AS n,
    u.id
FROM app.users AS u;
CREATE UNIQUE INDEX ON seed_users (n);

INSERT INTO app.api_keys (
    user_id, name, prefix, secret_hash, scopes, expires_at, revoked_at,
    last_used_at, use_count, created_by
)
SELECT
    u.id,
    'key ' || i,
    'seed' || lpad(i::text, 10, '0'),
    sha256(('api_key ' || i)::bytea),
    CASE WHEN i % 2 = 0 THEN '{read}'::text [] ELSE '{read,write}'::text [] END,
    CASE WHEN i % 4 = 0 THEN now() + make_interval(days => i % 365 - 60) END,
    CASE WHEN i % 10 = 0 THEN now() - make_interval(days => i % 90) END,
    now() - make_interval(mins => i % 50000),
    i % 1000,
    'seed'
FROM generate_series(1, (SELECT api_keys FROM seed_scale)) AS i
INNER JOIN seed_users AS u
    ON u.n = 1 + (i::bigint * 7919) % (SELECT users FROM seed_scale);

INSERT INTO app.sessions (
    user_id, token_hash, ip, user_agent, last_seen_at, expires_at, revoked_at, created_by
)
SELECT
    u.id,
    sha256(('session ' || i)::bytea),
    '192.168.0.0'::inet + (i % 65536),
    'Mozilla/5.0 (seed ' || i % 17 || ')',
    now() - make_interval(mins => i % 20000),
    now() + make_interval(hours => i % 720 - 360),
    CASE WHEN i % 7 = 0 THEN now() - make_interval(hours => i % 100) END,
    'seed'
FROM generate_series(1, (SELECT sessions FROM seed_scale)) AS i
INNER JOIN seed_users AS u
    ON u.n = 1 + (i::bigint * 104729) % (SELECT users FROM seed_scale);

INSERT INTO app.projects (owner_id, name, description, is_public, archived_at, created_by)
SELECT
    u.id,
    'Project ' || i,
    'Seeded project ' || i,
    i % 5 = 0,
    CASE WHEN i % 11 = 0 THEN now() - make_interval(days => i % 200) END,
    'seed'
FROM generate_series(1, (SELECT projects FROM seed_scale)) AS i
INNER JOIN seed_users AS u
    ON u.n = 1 + (i::bigint * 31) % (SELECT users FROM seed_scale);

CREATE TEMPORARY TABLE seed_projects ON COMMIT DROP AS
SELECT
    row_number() OVER (ORDER BY p.created_at, p.id) AS n,
    p.id
FROM app.projects AS p;
CREATE UNIQUE INDEX ON seed_projects (n);

INSERT INTO app.tasks (
    project_id, title, status, priority, assignee_id, due_at, completed_at, created_by
)
SELECT
    p.id,
    'Task ' || i,
    (ARRAY['todo', 'in_progress', 'blocked', 'done', 'cancelled'])[1 + i % 5],
    i % 5,
    CASE WHEN i % 3 <> 0 THEN u.id END,
    CASE WHEN i % 2 = 0 THEN now() + make_interval(days => i % 120 - 30) END,
    CASE WHEN i % 5 = 3 THEN now() - make_interval(days => i % 60) END,
    'seed'
FROM generate_series(1, (SELECT tasks FROM seed_scale)) AS i
INNER JOIN seed_projects AS p
    ON p.n = 1 + (i::bigint * 13) % (SELECT projects FROM seed_scale)
INNER JOIN seed_users AS u
    ON u.n = 1 + (i::bigint * 7) % (SELECT users FROM seed_scale);

ALTER TABLE app.audit_log DISABLE TRIGGER trigger_audit_log_chain;

INSERT INTO app.audit_log (
    occurred_at, actor, action, entity_type, entity_id, before, after, ip, request_id, row_hash
)
SELECT
    now() - make_interval(secs => (i::bigint * 7919) % (90 * 86400)),
    'seed' || (1 + (i::bigint * 17) % (SELECT users FROM seed_scale)),
    (ARRAY['user.update', 'user.login', 'api_key.use', 'task.update', 'session.create'])[
        1 + i % 5
    ],
    (ARRAY['user', 'user', 'api_key', 'task', 'session'])[1 + i % 5],
    u.id::text,
    jsonb_build_object('n', i),
    jsonb_build_object('n', i + 1),
    '172.16.0.0'::inet + (i % 65536),
    'req-' || i,
    sha256(('audit ' || i)::bytea)
FROM generate_series(1, (SELECT audit FROM seed_scale)) AS i
INNER JOIN seed_users AS u
    ON u.n = 1 + (i::bigint * 17) % (SELECT users FROM seed_scale);

ALTER TABLE app.audit_log ENABLE TRIGGER trigger_audit_log_chain;
