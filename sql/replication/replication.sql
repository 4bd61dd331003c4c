-- name: get_wal_position()$
-- Return the primary's current WAL position in bytes (the replicas' yardstick);
-- raises 55000 on a standby. Cannot fail on any constraint.
SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS wal_position;

-- name: get_replica_status()^
-- Return whether the server is a standby and the WAL position it has replayed,
-- in bytes (NULL on a primary). Cannot fail on any constraint.
SELECT
    pg_is_in_recovery() AS in_recovery,
    (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed;

-- name: get_backend_pid()$
-- Return the process id of the server backend that runs this statement; a
-- connection pooler reports another one at login. Cannot fail on any constraint.
SELECT pg_backend_pid() AS backend_pid;
