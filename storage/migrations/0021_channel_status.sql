-- What the node running a channel's background work last said of it: running (on which
-- node), or failed with the provider's refusal (bad credentials) and when it will retry.
-- Admins read it beside the channel; a running entry not refreshed for a while means its
-- node is gone (another takes the channel over).
CREATE TABLE channel_status (
    channel_id bigint PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    state      text NOT NULL CHECK (state IN ('running', 'failed', 'stopped')),
    node       text,
    error      text,
    since      timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);
-- Whether a channel has history (removing it is then a disable).
CREATE INDEX dialogs_channel ON dialogs (channel_id);
