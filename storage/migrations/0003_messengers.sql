-- Messenger channels: where to reply, outbound delivery, media fetched after the event,
-- and per-channel poller state (Telegram getUpdates offset, VK long-poll ts).

-- The provider's address of the conversation (Telegram chat id, VK peer id, Viber user id),
-- refreshed by every inbound message, so a reply goes where the customer last wrote from.
ALTER TABLE dialogs ADD COLUMN peer text;

-- Outbound interactions are their own delivery queue: pending until the provider took them,
-- then sent / delivered / seen, or failed with the provider's reason.
ALTER TABLE interactions
    ADD COLUMN delivery_error text,
    ADD COLUMN provider_message_id text,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN author text,
    ADD COLUMN edited_at timestamptz,
    ADD CONSTRAINT interactions_delivery_state CHECK (
        delivery_state IS NULL
        OR delivery_state IN ('pending', 'sent', 'delivered', 'seen', 'failed', 'undeliverable'));
CREATE INDEX interactions_outbound_due ON interactions (next_attempt_at)
    WHERE delivery_state = 'pending';
CREATE INDEX interactions_provider_message ON interactions (channel_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- Media is recorded with the event and fetched afterwards, so a provider gets its 200
-- quickly and a crash between the two loses only a download that is retried.
ALTER TABLE attachments
    ALTER COLUMN storage_path DROP NOT NULL,
    ADD COLUMN state text NOT NULL DEFAULT 'stored'
        CHECK (state IN ('stored', 'pending', 'refused', 'failed')),
    ADD COLUMN remote_ref text,
    ADD COLUMN note text,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz;
CREATE INDEX attachments_pending ON attachments (next_attempt_at) WHERE state = 'pending';

CREATE TABLE channel_state (
    channel_id bigint PRIMARY KEY REFERENCES channels (id),
    state      jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Whether a messenger user currently accepts messages from the channel (Viber subscribed /
-- unsubscribed, Telegram bot blocked / unblocked, VK message_allow / message_deny).
CREATE TABLE channel_subscribers (
    channel_id  bigint NOT NULL REFERENCES channels (id),
    external_id text NOT NULL,
    subscribed  boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, external_id)
);
