-- Drop the password reset tokens (outstanding tokens are lost).
-- squawk-ignore-file ban-drop-table

DROP TABLE app.password_reset_tokens;
