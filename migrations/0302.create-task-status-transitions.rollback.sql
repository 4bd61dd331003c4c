-- Drop the task status transition rules.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-function

DROP FUNCTION app.task_status_transition_allowed(text, text);
