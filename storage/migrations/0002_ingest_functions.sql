-- The ingest pipeline's database half, as functions so that one inbound event costs one
-- round trip: lock the contact keys, recognise a retry, identify the lead, learn new
-- details, thread the dialog, store the interaction and its attachments.
-- Functions are VOLATILE, so every statement inside takes a fresh snapshot and sees what a
-- transaction that held the same advisory lock just committed.

-- The lead these details identify: channel identity first, then phone, then email; among
-- several leads sharing a phone (unmerged duplicates) the oldest, so the answer is stable.
-- No join to leads is needed: a merge moves every phone, email and identity off the merged
-- lead, so only live leads hold them (storage/merges.py keeps that true). Each branch runs
-- only when it has input, and none sorts or limits in SQL: with an ORDER BY, a generic plan
-- may walk the (lead_id, ...) primary key in order and filter, which grows with the table;
-- without, each can only be an index lookup by its normal form.
CREATE FUNCTION hub_identify(p_identity_kind text, p_identity_id text,
                             p_phones text[], p_emails text[])
RETURNS bigint LANGUAGE plpgsql STABLE
-- Generic plans: with `= ANY($array)` the planner keeps judging a fresh plan cheaper and
-- re-plans on every call; these statements have one right plan, so plan them once.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_lead bigint;
    v_ids bigint[];
BEGIN
    IF p_identity_kind IS NOT NULL THEN
        SELECT i.lead_id INTO v_lead FROM lead_identities i
         WHERE i.kind = p_identity_kind AND i.external_id = p_identity_id;
        IF v_lead IS NOT NULL THEN
            RETURN v_lead;
        END IF;
    END IF;
    IF cardinality(p_phones) > 0 THEN
        SELECT array_agg(p.lead_id) INTO v_ids FROM lead_phones p WHERE p.phone = ANY(p_phones);
        IF v_ids IS NOT NULL THEN
            RETURN (SELECT min(x) FROM unnest(v_ids) AS x);
        END IF;
    END IF;
    IF cardinality(p_emails) > 0 THEN
        SELECT array_agg(e.lead_id) INTO v_ids FROM lead_emails e WHERE e.email = ANY(p_emails);
        IF v_ids IS NOT NULL THEN
            RETURN (SELECT min(x) FROM unnest(v_ids) AS x);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Teach a lead details it did not have. Never overwrites: a new phone or email is added,
-- a nameless lead takes the name, a different name becomes a suggestion, and an identity
-- owned by another lead stays with it. True when anything changed.
CREATE FUNCTION hub_learn(p_lead bigint, p_name text, p_phones text[], p_exts text[],
                          p_emails text[], p_identity_kind text, p_identity_id text)
RETURNS boolean LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_rows integer;
    v_changed boolean := false;
BEGIN
    IF cardinality(p_phones) > 0 THEN
        INSERT INTO lead_phones (lead_id, phone, extension)
        SELECT p_lead, x.phone, NULLIF(x.ext, '')
          FROM unnest(p_phones, p_exts) AS x(phone, ext)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_changed := v_changed OR v_rows > 0;
    END IF;
    IF cardinality(p_emails) > 0 THEN
        INSERT INTO lead_emails (lead_id, email) SELECT p_lead, x FROM unnest(p_emails) AS x
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_changed := v_changed OR v_rows > 0;
    END IF;
    IF p_identity_kind IS NOT NULL THEN
        INSERT INTO lead_identities (lead_id, kind, external_id)
        VALUES (p_lead, p_identity_kind, p_identity_id)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_changed := v_changed OR v_rows > 0;
    END IF;
    IF p_name IS NOT NULL THEN
        UPDATE leads SET
            name = COALESCE(name, p_name),
            name_suggestions = CASE WHEN name IS NULL THEN name_suggestions
                                    ELSE array_append(name_suggestions, p_name) END
         WHERE id = p_lead
           AND (name IS NULL OR (lower(name) <> lower(p_name)
                                 AND NOT p_name = ANY(name_suggestions)));
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_changed := v_changed OR v_rows > 0;
    END IF;
    IF v_changed THEN
        UPDATE leads SET updated_at = now() WHERE id = p_lead;
    END IF;
    RETURN v_changed;
END
$$;

CREATE FUNCTION hub_ingest(
    p_lock_keys bigint[],
    p_channel_id bigint, p_external_id text, p_kind text, p_occurred_at timestamptz,
    p_text text, p_subject text, p_call jsonb, p_extra jsonb, p_payload_hash text,
    p_name text, p_phones text[], p_exts text[], p_emails text[],
    p_identity_kind text, p_identity_id text,
    p_on_unknown text, p_forced_lead bigint, p_inbound jsonb,
    p_att_names text[], p_att_types text[], p_att_sizes bigint[], p_att_paths text[],
    p_att_sha text[])
RETURNS TABLE (o_status text, o_interaction bigint, o_lead bigint, o_dialog bigint,
               o_unsorted bigint, o_lead_created boolean, o_lead_updated boolean,
               o_dialog_created boolean, o_stored_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_lead bigint;
    v_dialog bigint;
    v_interaction bigint;
    v_unsorted bigint;
    v_hash text;
    v_lead_created boolean := false;
    v_lead_updated boolean := false;
    v_dialog_created boolean;
BEGIN
    -- Keys arrive sorted, and unnest keeps their order: every caller locks in one order.
    PERFORM pg_advisory_xact_lock(k) FROM unnest(p_lock_keys) AS k;

    SELECT i.id, i.lead_id, i.dialog_id, i.payload_hash
      INTO v_interaction, v_lead, v_dialog, v_hash
      FROM interactions i WHERE i.channel_id = p_channel_id AND i.external_id = p_external_id;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate', v_interaction, v_lead, v_dialog, NULL::bigint,
                            false, false, false, v_hash;
        RETURN;
    END IF;

    v_lead := COALESCE(p_forced_lead,
                       hub_identify(p_identity_kind, p_identity_id, p_phones, p_emails));
    IF v_lead IS NULL THEN
        IF p_on_unknown = 'stage' THEN
            INSERT INTO unsorted (channel_id, external_id, inbound)
            VALUES (p_channel_id, p_external_id, p_inbound)
            ON CONFLICT (channel_id, external_id) DO NOTHING
            RETURNING id INTO v_unsorted;
            IF v_unsorted IS NULL THEN
                SELECT u.id, u.inbound->>'payload_hash' INTO v_unsorted, v_hash
                  FROM unsorted u WHERE u.channel_id = p_channel_id AND u.external_id = p_external_id;
            END IF;
            RETURN QUERY SELECT 'staged', NULL::bigint, NULL::bigint, NULL::bigint, v_unsorted,
                                false, false, false, v_hash;
            RETURN;
        END IF;
        INSERT INTO leads (name) VALUES (p_name) RETURNING id INTO v_lead;
        v_lead_created := true;
    END IF;

    v_lead_updated := hub_learn(v_lead, CASE WHEN v_lead_created THEN NULL ELSE p_name END,
                                p_phones, p_exts, p_emails, p_identity_kind, p_identity_id)
                      AND NOT v_lead_created;

    INSERT INTO dialogs (lead_id, channel_id) VALUES (v_lead, p_channel_id)
    ON CONFLICT (lead_id, channel_id) WHERE status <> 'closed' DO UPDATE SET updated_at = now()
    RETURNING id, (xmax = 0) INTO v_dialog, v_dialog_created;

    INSERT INTO interactions (lead_id, dialog_id, channel_id, kind, direction, text, subject,
                              occurred_at, external_id, call, extra, payload_hash)
    VALUES (v_lead, v_dialog, p_channel_id, p_kind, 'in', p_text, p_subject, p_occurred_at,
            p_external_id, p_call, COALESCE(p_extra, '{}'::jsonb), p_payload_hash)
    RETURNING id INTO v_interaction;

    IF cardinality(p_att_names) > 0 THEN
        INSERT INTO attachments (interaction_id, name, content_type, size, storage_path, sha256)
        SELECT v_interaction, a.name, a.type, a.size, a.path, a.sha
          FROM unnest(p_att_names, p_att_types, p_att_sizes, p_att_paths, p_att_sha)
               AS a(name, type, size, path, sha);
    END IF;

    RETURN QUERY SELECT 'created', v_interaction, v_lead, v_dialog, NULL::bigint,
                        v_lead_created, v_lead_updated, v_dialog_created, NULL::text;
END
$$;
