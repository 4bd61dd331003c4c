-- name: terminate_backends(dbname)$
-- Terminate every other backend connected to dbname (the fault the load run
-- injects); return how many were signalled. Needs a superuser.
SELECT count(pg_terminate_backend(a.pid))
FROM pg_stat_activity AS a
WHERE
    a.datname = :dbname
    AND a.pid != pg_backend_pid();
