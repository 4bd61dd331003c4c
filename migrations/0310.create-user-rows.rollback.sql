-- Drop the user_rows view. Queries that use it must be back to their own
-- column lists first.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-view

DROP VIEW app.user_rows;
