-- Channel kinds are the connectors the hub registers (connectors/registry.py), checked by
-- the hub when a channel is added; a new kind needs no change to the schema.
ALTER TABLE channels DROP CONSTRAINT IF EXISTS channels_kind_check;
