-- Seed data for `vdata bench`, run as the owner role on a scratch database.
-- Sizes come from session settings set just before (set_config), so no SQL is
-- built in Python: vdata_bench.users (users to read and update) and
-- vdata_bench.run (a tag that keeps usernames unique across runs on one
-- database). The password hash is a well-formed argon2id string that no
-- password matches: these users are read and updated, never logged in.

INSERT INTO app.users (username, email, full_name, password_hash, created_by, updated_by)
SELECT
    'b' || current_setting('vdata_bench.run') || '_' || g AS username,
    'Bench.' || current_setting('vdata_bench.run') || '.' || g || '@Example.org' AS email,
    'Bench user ' || g AS full_name,
    '$argon2id$v=19$m=65536,t=3,p=4$c2VlZHNlZWRzZWVk$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
    AS password_hash,
    'bench' AS created_by,
    'bench' AS updated_by
FROM generate_series(1, current_setting('vdata_bench.users')::integer) AS g;

ANALYZE app.users;

-- The project bulk inserts add tasks to, owned by the first seeded user.
INSERT INTO app.projects (owner_id, name, created_by, updated_by)
SELECT
    u.id AS owner_id,
    'bench ' || current_setting('vdata_bench.run') AS name,
    'bench' AS created_by,
    'bench' AS updated_by
FROM app.users AS u
WHERE u.username = 'b' || current_setting('vdata_bench.run') || '_1';
