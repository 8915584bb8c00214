-- Teach a lead details it did not have. Never overwrites: a new phone or email is added,
-- a nameless lead takes the name, a different name becomes a suggestion, and an identity
-- owned by another lead stays with it. True when anything changed.
-- For a lead created in the same transaction (p_new_lead) nothing can conflict yet, so the
-- rows go in with plain inserts: the cheaper path every first contact takes.
CREATE OR REPLACE FUNCTION hub_learn(p_lead bigint, p_name text, p_phones text[], p_exts text[],
                                     p_emails text[], p_identity_kind text, p_identity_id text,
                                     p_new_lead boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_rows integer;
    v_changed boolean := false;
BEGIN
    IF p_new_lead THEN
        IF cardinality(p_phones) > 0 THEN
            INSERT INTO lead_phones (lead_id, phone, extension)
            SELECT p_lead, x.phone, NULLIF(x.ext, '') FROM unnest(p_phones, p_exts) AS x(phone, ext);
        END IF;
        IF cardinality(p_emails) > 0 THEN
            INSERT INTO lead_emails (lead_id, email) SELECT p_lead, x FROM unnest(p_emails) AS x;
        END IF;
        IF p_identity_kind IS NOT NULL THEN
            -- An identity can still belong to another lead (a contact shared by someone else).
            INSERT INTO lead_identities (lead_id, kind, external_id)
            VALUES (p_lead, p_identity_kind, p_identity_id) ON CONFLICT DO NOTHING;
        END IF;
        RETURN true;
    END IF;
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
