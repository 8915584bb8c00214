-- The ingest pipeline's database half, as one function so that one inbound event costs one
-- round trip: lock the contact keys, recognise a retry, identify the lead, learn new
-- details, thread the dialog (reopening one closed less than p_reopen_seconds ago), store the
-- interaction and its attachments, and append the domain events. Called with named
-- arguments by storage/ingest.py and read back by column name.
-- VOLATILE, so every statement inside takes a fresh snapshot and sees what a transaction
-- that held the same advisory lock just committed.
-- Earlier signatures (before dialogs had a thread key, before threads were looked up by the
-- ids a message refers to, before phone suggestions, before trace ids): never to coexist with the one below.
DROP FUNCTION IF EXISTS hub_ingest(
    bigint[], bigint, text, text, timestamptz, text, text, jsonb, jsonb, text, text, text[],
    text[], text[], text, text, text, bigint, jsonb, text, jsonb, integer, boolean);
DROP FUNCTION IF EXISTS hub_ingest(
    bigint[], bigint, text, text, timestamptz, text, text, jsonb, jsonb, text, text, text[],
    text[], text[], text, text, text, bigint, jsonb, text, jsonb, integer, boolean, text);
DROP FUNCTION IF EXISTS hub_ingest(
    bigint[], bigint, text, text, timestamptz, text, text, jsonb, jsonb, text, text, text[],
    text[], text[], text, text, text, bigint, jsonb, text, jsonb, integer, boolean, text, text[]);
DROP FUNCTION IF EXISTS hub_ingest(
    bigint[], bigint, text, text, timestamptz, text, text, jsonb, jsonb, text, text, text[],
    text[], text[], text, text, text, bigint, jsonb, text, jsonb, integer, boolean, text, text[],
    text[]);
CREATE OR REPLACE FUNCTION hub_ingest(
    p_lock_keys bigint[],
    p_channel_id bigint, p_external_id text, p_kind text, p_occurred_at timestamptz,
    p_text text, p_subject text, p_call jsonb, p_extra jsonb, p_payload_hash text,
    p_name text, p_phones text[], p_exts text[], p_emails text[],
    p_identity_kind text, p_identity_id text,
    p_on_unknown text, p_forced_lead bigint, p_inbound jsonb, p_peer text,
    p_attachments jsonb, p_reopen_seconds integer, p_fresh_id boolean, p_thread_key text,
    p_thread_refs text[], p_phone_suggestions text[], p_trace text,
    OUT o_status text, OUT o_interaction bigint, OUT o_lead bigint, OUT o_dialog bigint,
    OUT o_unsorted bigint, OUT o_lead_created boolean, OUT o_lead_updated boolean,
    OUT o_dialog_created boolean, OUT o_stored_hash text, OUT o_dialog_reopened boolean,
    OUT o_operator bigint, OUT o_holders bigint[])
LANGUAGE plpgsql VOLATILE
-- Generic plans, planned once per connection: left to choose, PostgreSQL re-planned several
-- of these statements on every call (about a fifth of the function's CPU, measured).
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    k bigint;
    v_seq integer;
    v_thread text;
BEGIN
    o_lead_created := false;
    o_lead_updated := false;
    o_dialog_created := false;
    o_dialog_reopened := false;
    o_holders := '{}';
    -- The inbound event's trace id, on every domain event this transaction writes (the
    -- column's default reads it), so the webhook deliveries are logged under it.
    IF p_trace IS NOT NULL THEN
        PERFORM set_config('hub.trace_id', p_trace, true);
    END IF;
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
        -- The first touch is where the lead came from (a form adds its page and utm).
        INSERT INTO leads (name, source)
        VALUES (p_name, jsonb_build_object('kind', p_kind, 'channel_id', p_channel_id,
                                           'at', p_occurred_at)
                        || COALESCE(p_extra->'source', '{}'::jsonb))
        RETURNING id INTO o_lead;
        o_lead_created := true;
    END IF;

    -- A message naming earlier ones of its channel (an email's References, In-Reply-To)
    -- belongs to their thread, whatever key it would have on its own.
    IF cardinality(p_thread_refs) > 0 THEN
        SELECT d.thread_key INTO v_thread FROM interactions i JOIN dialogs d ON d.id = i.dialog_id
         WHERE i.channel_id = p_channel_id
           AND (i.external_id = ANY(p_thread_refs) OR i.provider_message_id = ANY(p_thread_refs))
         ORDER BY i.id DESC LIMIT 1;
        IF v_thread IS NOT NULL THEN
            p_thread_key := v_thread;
        END IF;
    END IF;

    IF o_lead_created THEN
        PERFORM hub_learn(p_lead => o_lead, p_name => NULL, p_phones => p_phones, p_exts => p_exts,
                          p_emails => p_emails, p_identity_kind => p_identity_kind,
                          p_identity_id => p_identity_id, p_new_lead => true);
        INSERT INTO dialogs (lead_id, channel_id, peer, thread_key)
        VALUES (o_lead, p_channel_id, p_peer, p_thread_key)
        RETURNING id INTO o_dialog;
        o_dialog_created := true;
    ELSIF cardinality(p_phones) > 0 OR cardinality(p_emails) > 0 OR p_identity_kind IS NOT NULL
          OR p_name IS NOT NULL THEN
        o_lead_updated := hub_learn(p_lead => o_lead, p_name => p_name, p_phones => p_phones,
                                    p_exts => p_exts, p_emails => p_emails,
                                    p_identity_kind => p_identity_kind,
                                    p_identity_id => p_identity_id);
    END IF;

    -- Phones seen near the customer's words but not given as theirs: offered on the lead,
    -- unless it has them, offers them already, or an operator dismissed them.
    IF cardinality(p_phone_suggestions) > 0 THEN
        UPDATE leads l
           -- In the order given (the pipeline passes each number once).
           SET phone_suggestions = l.phone_suggestions || ARRAY(
                   SELECT s FROM unnest(p_phone_suggestions) WITH ORDINALITY AS t(s, n)
                    WHERE NOT s = ANY(l.phone_suggestions)
                      AND NOT s = ANY(l.dismissed_phone_suggestions)
                      AND NOT EXISTS (SELECT 1 FROM lead_phones p
                                       WHERE p.lead_id = l.id AND p.phone = s)
                    ORDER BY n),
               updated_at = now()
         WHERE l.id = o_lead
           AND EXISTS (SELECT 1 FROM unnest(p_phone_suggestions) AS s
                        WHERE NOT s = ANY(l.phone_suggestions)
                          AND NOT s = ANY(l.dismissed_phone_suggestions)
                          AND NOT EXISTS (SELECT 1 FROM lead_phones p
                                           WHERE p.lead_id = l.id AND p.phone = s));
        o_lead_updated := o_lead_updated OR (FOUND AND NOT o_lead_created);
    END IF;

    IF p_reopen_seconds > 0 AND NOT o_lead_created THEN
        UPDATE dialogs SET status = 'queued', closed_at = NULL, queued_at = now(),
                           updated_at = now(), operator_id = NULL, assigned_at = NULL,
                           first_response_at = NULL, auto_replied_at = NULL,
                           offered_to = '{}', declined_by = '{}', offer_expires_at = NULL,
                           peer = COALESCE(p_peer, peer)
         WHERE id = (SELECT d.id FROM dialogs d
                      WHERE d.lead_id = o_lead AND d.channel_id = p_channel_id
                        AND d.thread_key = p_thread_key AND d.status = 'closed'
                        AND d.closed_at > now() - make_interval(secs => p_reopen_seconds)
                        AND NOT EXISTS (SELECT 1 FROM dialogs o WHERE o.lead_id = o_lead
                                        AND o.channel_id = p_channel_id
                                        AND o.thread_key = p_thread_key
                                        AND o.status <> 'closed')
                      ORDER BY d.closed_at DESC LIMIT 1)
        RETURNING id INTO o_dialog;
        o_dialog_reopened := o_dialog IS NOT NULL;
    END IF;
    IF o_dialog IS NULL THEN
        INSERT INTO dialogs (lead_id, channel_id, peer, thread_key)
        VALUES (o_lead, p_channel_id, p_peer, p_thread_key)
        ON CONFLICT (lead_id, channel_id, thread_key) WHERE status <> 'closed'
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
    -- The event rows, inserted directly: this is the hot path, and building them as JSON for
    -- hub_append_events cost a measurable share of the function. Same numbering rule: a new
    -- lead's events start at 1 with no lock (nobody else sees the lead yet); an existing
    -- lead's continue its sequence under its event lock (storage/functions/05_events.sql).
    v_seq := CASE WHEN o_lead_created THEN 0 ELSE hub_lead_seq(o_lead) END;
    INSERT INTO domain_events (type, lead_id, lead_seq, dialog_id, interaction_id, actor, data)
    SELECT e.type, o_lead, v_seq + row_number() OVER (ORDER BY e.n), o_dialog, e.interaction,
           COALESCE(NULLIF(current_setting('hub.actor', true), ''), 'customer'),
           CASE WHEN e.n = 4
                THEN jsonb_build_object('channel_id', p_channel_id, 'kind', p_kind,
                                        'direction', 'in')
                ELSE jsonb_build_object('channel_id', p_channel_id) END
      FROM (VALUES (1, 'lead.created', NULL::bigint, o_lead_created),
                   (2, 'lead.updated', NULL::bigint, o_lead_updated),
                   (3, 'dialog.created', NULL::bigint, o_dialog_created),
                   (4, 'interaction.created', o_interaction, true))
           AS e(n, type, interaction, wanted)
     WHERE e.wanted;
    -- Whoever holds a dialog of this lead sees the message in the lead's conversation: told
    -- after the commit with no query of its own. A lead made just now has no such dialog.
    IF NOT o_lead_created THEN
        o_holders := ARRAY(SELECT DISTINCT d.operator_id FROM dialogs d
                            WHERE d.lead_id = o_lead AND d.status = 'assigned'
                              AND d.operator_id IS NOT NULL);
    END IF;
    o_status := 'created';
END
$$;
