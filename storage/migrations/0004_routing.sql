-- Routing dialogs to operators: sessions, presence, queues, offers, timings.

CREATE TABLE operator_tokens (
    id          bigserial PRIMARY KEY,
    operator_id bigint NOT NULL REFERENCES operators (id),
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX operator_tokens_operator ON operator_tokens (operator_id);

CREATE TABLE operator_presence (
    operator_id bigint PRIMARY KEY REFERENCES operators (id),
    status      text NOT NULL CHECK (status IN ('online', 'away', 'offline')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queues (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    strategy        text NOT NULL DEFAULT 'least_busy'
                    CHECK (strategy IN ('least_busy', 'round_robin', 'sticky', 'all')),
    offer_timeout_s integer NOT NULL DEFAULT 30 CHECK (offer_timeout_s > 0),
    channels        text[] NOT NULL DEFAULT '{}',
    skills          text[] NOT NULL DEFAULT '{}',
    hours           text,
    timezone        text NOT NULL DEFAULT 'UTC',
    auto_reply      text,
    last_operator_id bigint,
    created_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE dialogs
    ADD COLUMN queue_id bigint REFERENCES queues (id),
    ADD COLUMN offered_to bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN offer_expires_at timestamptz,
    ADD COLUMN declined_by bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN assigned_at timestamptz,
    ADD COLUMN first_response_at timestamptz,
    ADD COLUMN auto_replied_at timestamptz,
    ADD COLUMN last_operator_id bigint,
    ADD COLUMN operator_read_at timestamptz;
CREATE INDEX dialogs_waiting ON dialogs (queued_at, id) WHERE status = 'queued';
CREATE INDEX dialogs_offer_expiry ON dialogs (offer_expires_at) WHERE status = 'offered';
CREATE INDEX dialogs_offered_to ON dialogs USING gin (offered_to) WHERE status = 'offered';
CREATE INDEX dialogs_lead_last ON dialogs (lead_id, channel_id, closed_at DESC);

-- The ingest function, as of this version: learns the reply address (peer), takes attachment
-- states and remote references, and reopens a dialog closed less than p_reopen_seconds ago
-- instead of opening a new one.
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
    p_attachments jsonb, p_reopen_seconds integer, p_fresh_id boolean,
    OUT o_status text, OUT o_interaction bigint, OUT o_lead bigint, OUT o_dialog bigint,
    OUT o_unsorted bigint, OUT o_lead_created boolean, OUT o_lead_updated boolean,
    OUT o_dialog_created boolean, OUT o_stored_hash text, OUT o_dialog_reopened boolean,
    OUT o_operator bigint)
LANGUAGE plpgsql VOLATILE
-- Generic plans, planned once per connection: left to choose, PostgreSQL re-planned several
-- of these statements on every call (about a fifth of the function's CPU, measured).
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    k bigint;
BEGIN
    o_lead_created := false;
    o_lead_updated := false;
    o_dialog_created := false;
    o_dialog_reopened := false;
    -- Keys arrive sorted: every caller locks in one order.
    FOREACH k IN ARRAY p_lock_keys LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;

    -- An id the hub minted a moment ago (a form sent without Idempotency-Key) cannot have
    -- been seen before; any other may be the provider's retry.
    IF NOT p_fresh_id THEN
        SELECT i.id, i.lead_id, i.dialog_id, i.payload_hash
          INTO o_interaction, o_lead, o_dialog, o_stored_hash
          FROM interactions i WHERE i.channel_id = p_channel_id AND i.external_id = p_external_id;
        IF FOUND THEN
            o_status := 'duplicate';
            RETURN;
        END IF;
    END IF;
    o_dialog := NULL;

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

    IF o_lead_created THEN
        -- A lead made a moment ago has nothing yet to conflict with: plain inserts.
        IF cardinality(p_phones) > 0 THEN
            INSERT INTO lead_phones (lead_id, phone, extension)
            SELECT o_lead, x.phone, NULLIF(x.ext, '') FROM unnest(p_phones, p_exts) AS x(phone, ext);
        END IF;
        IF cardinality(p_emails) > 0 THEN
            INSERT INTO lead_emails (lead_id, email) SELECT o_lead, x FROM unnest(p_emails) AS x;
        END IF;
        IF p_identity_kind IS NOT NULL THEN
            INSERT INTO lead_identities (lead_id, kind, external_id)
            VALUES (o_lead, p_identity_kind, p_identity_id) ON CONFLICT DO NOTHING;
        END IF;
        INSERT INTO dialogs (lead_id, channel_id, peer) VALUES (o_lead, p_channel_id, p_peer)
        RETURNING id INTO o_dialog;
        o_dialog_created := true;
    ELSIF cardinality(p_phones) > 0 OR cardinality(p_emails) > 0 OR p_identity_kind IS NOT NULL
          OR p_name IS NOT NULL THEN
        o_lead_updated := hub_learn(o_lead, p_name, p_phones, p_exts, p_emails,
                                    p_identity_kind, p_identity_id);
    END IF;

    IF p_reopen_seconds > 0 AND NOT o_lead_created THEN
        UPDATE dialogs SET status = 'queued', closed_at = NULL, queued_at = now(),
                           updated_at = now(), operator_id = NULL, assigned_at = NULL,
                           first_response_at = NULL, auto_replied_at = NULL,
                           offered_to = '{}', declined_by = '{}', offer_expires_at = NULL,
                           peer = COALESCE(p_peer, peer)
         WHERE id = (SELECT d.id FROM dialogs d
                      WHERE d.lead_id = o_lead AND d.channel_id = p_channel_id
                        AND d.status = 'closed'
                        AND d.closed_at > now() - make_interval(secs => p_reopen_seconds)
                        AND NOT EXISTS (SELECT 1 FROM dialogs o WHERE o.lead_id = o_lead
                                        AND o.channel_id = p_channel_id AND o.status <> 'closed')
                      ORDER BY d.closed_at DESC LIMIT 1)
        RETURNING id INTO o_dialog;
        o_dialog_reopened := o_dialog IS NOT NULL;
    END IF;
    IF o_dialog IS NULL THEN
        INSERT INTO dialogs (lead_id, channel_id, peer) VALUES (o_lead, p_channel_id, p_peer)
        ON CONFLICT (lead_id, channel_id) WHERE status <> 'closed'
        DO UPDATE SET updated_at = now(), peer = COALESCE(EXCLUDED.peer, dialogs.peer)
        RETURNING id, (xmax = 0), CASE WHEN status = 'assigned' THEN operator_id END
             INTO o_dialog, o_dialog_created, o_operator;
    END IF;

    INSERT INTO interactions (lead_id, dialog_id, channel_id, kind, direction, text, subject,
                              occurred_at, external_id, call, extra, payload_hash)
    VALUES (o_lead, o_dialog, p_channel_id, p_kind, 'in', p_text, p_subject, p_occurred_at,
            p_external_id, p_call, COALESCE(p_extra, '{}'::jsonb), p_payload_hash)
    RETURNING id INTO o_interaction;

    IF p_attachments IS NOT NULL THEN
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
