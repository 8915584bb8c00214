-- Admin work without a terminal: an operator who leaves is disabled (their login refused,
-- their sessions ended, their history kept), never deleted.
ALTER TABLE operators ADD COLUMN disabled_at timestamptz;
-- Revoked keys stay listed for the record; the live ones are looked up by hash.
CREATE INDEX api_keys_live ON api_keys (id) WHERE revoked_at IS NULL;
