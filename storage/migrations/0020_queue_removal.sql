-- A queue that dialogs were routed through is removed by disabling it: the router no longer
-- sees it (its dialogs go to their channel's queue, else the default) and its name is free
-- for a new queue; the dialogs keep pointing at it for the record.
ALTER TABLE queues ADD COLUMN disabled_at timestamptz;
ALTER TABLE queues DROP CONSTRAINT queues_name_key;
CREATE UNIQUE INDEX queues_live_name ON queues (name) WHERE disabled_at IS NULL;
CREATE INDEX dialogs_queue ON dialogs (queue_id) WHERE queue_id IS NOT NULL;
