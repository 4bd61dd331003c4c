-- Drop sessions and API keys.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-table, ban-drop-function

DROP TABLE app.sessions;

DROP TABLE app.api_keys;
