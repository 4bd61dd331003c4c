-- API key usage per UTC day, beside the running counters on app.api_keys
-- (use_count, last_used_at). The statements that count uses (the batched
-- record_api_key_usage and the in-transaction use_api_key) add to the day's
-- row in the same statement, so the history and the counters agree. A key's
-- history goes when the key is deleted (cascade).
-- depends: 0350.create-password-reset-tokens

CREATE TABLE app.api_key_usage_days (
    api_key_id uuid NOT NULL,
    used_on date NOT NULL,
    uses bigint NOT NULL,
    last_used_at timestamptz NOT NULL,
    CONSTRAINT pk_api_key_usage_days PRIMARY KEY (api_key_id, used_on),
    CONSTRAINT fk_api_key_usage_days_api_key_id_api_keys FOREIGN KEY (api_key_id)
    REFERENCES app.api_keys (id) ON DELETE CASCADE,
    CONSTRAINT check_api_key_usage_days_uses_positive CHECK (uses >= 1)
);

COMMENT ON TABLE app.api_key_usage_days IS
'Uses of each API key per UTC day (used_on); written with the counters on app.api_keys.';
