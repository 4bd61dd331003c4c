-- name: get_wal_position()$
-- Return the end of the last WAL record the primary has inserted, in bytes: the
-- replicas' yardstick (every commit acknowledged so far ends at or before it,
-- even with synchronous_commit off). The insert position may point just past
-- a page header (24 bytes, 40 at the start of a segment) that no record fills
-- yet; that header is taken off, or an idle primary would stay ahead of every
-- replica. Raises 55000 on a standby. Cannot fail on any constraint.
WITH position AS (
    SELECT
        (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS inserted,
        current_setting('wal_block_size')::bigint AS page,
        pg_size_bytes(current_setting('wal_segment_size')) AS segment
)

SELECT
    CASE
        WHEN p.inserted % p.segment = 40 THEN p.inserted - 40
        WHEN p.inserted % p.page = 24 THEN p.inserted - 24
        ELSE p.inserted
    END AS wal_position
FROM position AS p;

-- name: get_replica_status()^
-- Return whether the server is a standby and the WAL position it has replayed,
-- in bytes (NULL on a primary). Cannot fail on any constraint.
-- not-null: in_recovery
SELECT
    pg_is_in_recovery() AS in_recovery,
    (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed;

-- name: get_backend_pid()$
-- Return the process id of the server backend that runs this statement; a
-- connection pooler reports another one at login. Cannot fail on any constraint.
SELECT pg_backend_pid() AS backend_pid;
