-- Drop the user_rows view and the audit_log_append function. Queries that use
-- them must be back to their own column lists and INSERT INTO app.audit_log.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-function, ban-drop-view

DROP FUNCTION app.audit_log_append(text, text, text, text, jsonb, jsonb, inet, text);

DROP VIEW app.user_rows;
