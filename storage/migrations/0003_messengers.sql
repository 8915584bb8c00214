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

-- The ingest function learns the peer and takes attachment states and remote references.
DROP FUNCTION hub_ingest(bigint[], bigint, text, text, timestamptz, text, text, jsonb, jsonb,
                         text, text, text[], text[], text[], text, text, text, bigint, jsonb,
                         text[], text[], bigint[], text[], text[]);

CREATE FUNCTION hub_ingest(
    p_lock_keys bigint[],
    p_channel_id bigint, p_external_id text, p_kind text, p_occurred_at timestamptz,
    p_text text, p_subject text, p_call jsonb, p_extra jsonb, p_payload_hash text,
    p_name text, p_phones text[], p_exts text[], p_emails text[],
    p_identity_kind text, p_identity_id text,
    p_on_unknown text, p_forced_lead bigint, p_inbound jsonb, p_peer text,
    p_attachments jsonb,
    OUT o_status text, OUT o_interaction bigint, OUT o_lead bigint, OUT o_dialog bigint,
    OUT o_unsorted bigint, OUT o_lead_created boolean, OUT o_lead_updated boolean,
    OUT o_dialog_created boolean, OUT o_stored_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k bigint;
BEGIN
    o_lead_created := false;
    o_lead_updated := false;
    o_dialog_created := false;
    -- Keys arrive sorted: every caller locks in one order.
    FOREACH k IN ARRAY p_lock_keys LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;

    SELECT i.id, i.lead_id, i.dialog_id, i.payload_hash
      INTO o_interaction, o_lead, o_dialog, o_stored_hash
      FROM interactions i WHERE i.channel_id = p_channel_id AND i.external_id = p_external_id;
    IF FOUND THEN
        o_status := 'duplicate';
        RETURN;
    END IF;

    o_lead := COALESCE(p_forced_lead,
                       hub_identify(p_identity_kind, p_identity_id, p_phones, p_emails));
    IF o_lead IS NULL THEN
        IF p_on_unknown = 'stage' THEN
            INSERT INTO unsorted (channel_id, external_id, inbound)
            VALUES (p_channel_id, p_external_id, p_inbound)
            ON CONFLICT (channel_id, external_id) DO NOTHING
            RETURNING id INTO o_unsorted;
            IF o_unsorted IS NULL THEN
                SELECT u.id, u.inbound->>'payload_hash' INTO o_unsorted, o_stored_hash
                  FROM unsorted u WHERE u.channel_id = p_channel_id AND u.external_id = p_external_id;
            END IF;
            o_status := 'staged';
            RETURN;
        END IF;
        INSERT INTO leads (name) VALUES (p_name) RETURNING id INTO o_lead;
        o_lead_created := true;
    END IF;

    IF cardinality(p_phones) > 0 OR cardinality(p_emails) > 0 OR p_identity_kind IS NOT NULL
       OR (p_name IS NOT NULL AND NOT o_lead_created) THEN
        o_lead_updated := hub_learn(o_lead, CASE WHEN o_lead_created THEN NULL ELSE p_name END,
                                    p_phones, p_exts, p_emails, p_identity_kind, p_identity_id)
                          AND NOT o_lead_created;
    END IF;

    INSERT INTO dialogs (lead_id, channel_id, peer) VALUES (o_lead, p_channel_id, p_peer)
    ON CONFLICT (lead_id, channel_id) WHERE status <> 'closed'
    DO UPDATE SET updated_at = now(), peer = COALESCE(EXCLUDED.peer, dialogs.peer)
    RETURNING id, (xmax = 0) INTO o_dialog, o_dialog_created;

    INSERT INTO interactions (lead_id, dialog_id, channel_id, kind, direction, text, subject,
                              occurred_at, external_id, call, extra, payload_hash)
    VALUES (o_lead, o_dialog, p_channel_id, p_kind, 'in', p_text, p_subject, p_occurred_at,
            p_external_id, p_call, COALESCE(p_extra, '{}'::jsonb), p_payload_hash)
    RETURNING id INTO o_interaction;

    IF jsonb_array_length(p_attachments) > 0 THEN
        INSERT INTO attachments (interaction_id, name, content_type, size, storage_path, sha256,
                                 state, remote_ref, note, next_attempt_at)
        SELECT o_interaction, a.name, a.content_type, a.size, a.storage_path, a.sha256,
               a.state, a.remote_ref, a.note,
               CASE WHEN a.state = 'pending' THEN now() END
          FROM jsonb_to_recordset(p_attachments)
               AS a(name text, content_type text, size bigint, storage_path text, sha256 text,
                    state text, remote_ref text, note text);
    END IF;
    o_status := 'created';
END
$$;

-- Whether a messenger user currently accepts messages from the channel (Viber subscribed /
-- unsubscribed, Telegram bot blocked / unblocked, VK message_allow / message_deny).
CREATE TABLE channel_subscribers (
    channel_id  bigint NOT NULL REFERENCES channels (id),
    external_id text NOT NULL,
    subscribed  boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, external_id)
);
