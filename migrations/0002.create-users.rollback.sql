-- Drop the users table with its index and trigger.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-table, ban-drop-function

DROP TABLE app.users;
