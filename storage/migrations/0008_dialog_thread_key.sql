-- An email thread is a dialog of its own: one open dialog per lead, channel and thread key
-- (the thread's root Message-ID for email; empty for chat channels, which behave as before).
ALTER TABLE dialogs ADD COLUMN thread_key text NOT NULL DEFAULT '';
DROP INDEX dialogs_open_per_lead_channel;
CREATE UNIQUE INDEX dialogs_open_per_lead_channel_thread ON dialogs (lead_id, channel_id, thread_key)
    WHERE status <> 'closed';
