-- Remove the app schema; by now every later step has dropped its tables.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-table, ban-drop-function, ban-drop-schema

DROP FUNCTION app.grant_service_role(name);

DROP FUNCTION app.stamp_row();

DROP SCHEMA app;
