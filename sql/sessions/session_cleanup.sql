-- What cleanup would delete from app.sessions (delete_expired_sessions
-- deletes it).

-- name: count_expired_sessions(older_than_seconds)$
-- Return how many sessions expired or were revoked more than
-- older_than_seconds ago (the rows delete_expired_sessions would delete).
-- seqscan-ok: cleanup (maintenance), not a request path
SELECT count(*)
FROM app.sessions AS s
WHERE
    s.expires_at <= now() - make_interval(secs => :older_than_seconds::double precision)
    OR s.revoked_at <= now() - make_interval(secs => :older_than_seconds::double precision);
