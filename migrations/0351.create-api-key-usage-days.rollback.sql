-- Drop the per-day usage history of API keys (the counters stay).
-- squawk-ignore-file ban-drop-table

DROP TABLE app.api_key_usage_days;
