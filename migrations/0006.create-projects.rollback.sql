-- Drop the projects table.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-table, ban-drop-function

DROP TABLE app.projects;
