-- Drop the access-control tables, links first.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-table, ban-drop-function

DROP TABLE app.user_roles;

DROP TABLE app.role_permissions;

DROP TABLE app.permissions;

DROP TABLE app.roles;
