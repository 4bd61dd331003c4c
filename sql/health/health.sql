-- name: get_server_version()$
-- Return the server's version string (the health check's ping); cannot fail
-- on any constraint.
SELECT current_setting('server_version') AS server_version; -- noqa: RF04
