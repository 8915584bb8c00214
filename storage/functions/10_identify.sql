-- The lead these details identify: channel identity first, then phone, then email; among
-- several leads sharing a phone (unmerged duplicates) the oldest, so the answer is stable.
-- No join to leads is needed: a merge moves every phone, email and identity off the merged
-- lead, so only live leads hold them (storage/merges.py keeps that true). Each branch runs
-- only when it has input, and none sorts or limits in SQL: with an ORDER BY, a generic plan
-- may walk the (lead_id, ...) primary key in order and filter, which grows with the table;
-- without, each can only be an index lookup by its normal form.
CREATE OR REPLACE FUNCTION hub_identify(p_identity_kind text, p_identity_id text,
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
