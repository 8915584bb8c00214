-- The domain-event log's writers. Every change to a lead, an interaction, a dialog or an
-- operator's presence appends rows to domain_events in the transaction that makes it; the
-- webhook outbox and the reports read this log, so what a CRM is told and what a report
-- counts never disagree.
--
-- Each event of a lead gets the lead's next sequence number (1, 2, 3, ...), assigned under a
-- transaction-scoped advisory lock on the lead, so a lead's events are numbered in commit
-- order without a gap and a reader can resume after any of them. Several leads are locked in
-- id order. The actor is whoever made the change: given with the event, else the
-- transaction's `hub.actor` setting (storage.events.set_actor), else 'system'.

CREATE OR REPLACE FUNCTION hub_event_lock(p_lead bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- "ev" namespace, apart from the contact keys (hashes) and operator locks ("op").
    SELECT 7311031045082578944 + p_lead  -- 0x6576 << 48
$$;

-- The last sequence number of a lead's events, taken under the lead's event lock (held to
-- the end of the transaction): the caller numbers its new events from it.
CREATE OR REPLACE FUNCTION hub_lead_seq(p_lead bigint) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hub_event_lock(p_lead));
    RETURN COALESCE((SELECT max(d.lead_seq) FROM domain_events d WHERE d.lead_id = p_lead), 0);
END
$$;

-- Its first form took a second argument (never in a release); a database that has it would
-- otherwise keep both and find calls ambiguous.
DROP FUNCTION IF EXISTS hub_append_events(jsonb, bigint);

-- p_events: a JSON array of {type, lead_id, dialog_id, interaction_id, operator_id, actor,
-- data}, recorded in array order. Leads are locked in id order (hub_lead_seq), so two
-- transactions touching the same two leads cannot wait for each other.
CREATE OR REPLACE FUNCTION hub_append_events(p_events jsonb)
RETURNS void LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_lead bigint;
    v_last jsonb := '{}'::jsonb;  -- each lead's last sequence number, by lead id
BEGIN
    FOR v_lead IN
        SELECT DISTINCT (e->>'lead_id')::bigint FROM jsonb_array_elements(p_events) AS e
         WHERE e->>'lead_id' IS NOT NULL ORDER BY 1
    LOOP
        v_last := v_last || jsonb_build_object(v_lead::text, hub_lead_seq(v_lead));
    END LOOP;
    INSERT INTO domain_events (type, lead_id, lead_seq, dialog_id, interaction_id, operator_id,
                               actor, data)
    SELECT x.e->>'type', (x.e->>'lead_id')::bigint,
           CASE WHEN x.e->>'lead_id' IS NOT NULL THEN
               (v_last->>(x.e->>'lead_id'))::integer
               + row_number() OVER (PARTITION BY x.e->>'lead_id' ORDER BY x.n)
           END,
           (x.e->>'dialog_id')::bigint, (x.e->>'interaction_id')::bigint,
           (x.e->>'operator_id')::bigint,
           COALESCE(x.e->>'actor', NULLIF(current_setting('hub.actor', true), ''), 'system'),
           COALESCE(x.e->'data', '{}'::jsonb)
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, n);
END
$$;

-- Dialog transitions, whoever makes them (the router, an operator, the API, the ingest
-- reopening a closed dialog): the trigger sees every path.
CREATE OR REPLACE FUNCTION hub_dialog_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
    v_operator bigint;
    v_data jsonb;
    v_before text;  -- an event that precedes the main one (a transfer before its assignment)
    v_before_data jsonb;
    v_reason text;
    v_seq integer;
    v_actor text := COALESCE(NULLIF(current_setting('hub.actor', true), ''), 'system');
BEGIN
    -- Rows are inserted directly rather than built as JSON for hub_append_events: offers
    -- and accepts are on the routing hot path.
    IF NEW.status = 'closed' THEN
        v_type := 'dialog.closed';
        v_operator := OLD.operator_id;
        v_data := jsonb_build_object('previous_status', OLD.status);
    ELSIF OLD.status = 'closed' THEN
        v_type := 'dialog.reopened';
        v_data := jsonb_build_object('channel_id', NEW.channel_id);
    ELSIF NEW.status = 'offered' THEN
        v_type := 'dialog.offered';
        v_data := jsonb_build_object('operators', to_jsonb(NEW.offered_to),
                                     'queue_id', NEW.queue_id,
                                     'expires_at', NEW.offer_expires_at);
    ELSIF NEW.status = 'assigned' THEN
        IF OLD.status = 'assigned' THEN
            v_before := 'dialog.transferred';
            v_before_data := jsonb_build_object('from_operator_id', OLD.operator_id,
                                                'to_operator_id', NEW.operator_id,
                                                'to_queue_id', NULL,
                                                'comment', NEW.handover_comment);
        END IF;
        v_type := 'dialog.assigned';
        v_operator := NEW.operator_id;
        v_data := jsonb_build_object(
            'via', CASE WHEN OLD.status = 'offered' AND NEW.operator_id = ANY(OLD.offered_to)
                        THEN 'accept' ELSE 'transfer' END);
        -- A waiting dialog given to someone directly carries its hand-over note here (a
        -- held one carries it in the `dialog.transferred` just before).
        IF v_data->>'via' = 'transfer' AND OLD.status <> 'assigned'
           AND NEW.handover_comment IS NOT NULL THEN
            v_data := v_data || jsonb_build_object('comment', NEW.handover_comment);
        END IF;
    ELSIF NEW.status = 'queued' THEN
        IF NEW.queued_at IS DISTINCT FROM OLD.queued_at THEN
            v_reason := 'transferred';
            v_before := 'dialog.transferred';
            v_before_data := jsonb_build_object('from_operator_id', OLD.operator_id,
                                                'to_operator_id', NULL,
                                                'to_queue_id', NEW.queue_id,
                                                'comment', NEW.handover_comment);
        ELSIF OLD.offer_expires_at IS NOT NULL AND OLD.offer_expires_at <= now() THEN
            v_reason := 'offer_expired';
        ELSIF cardinality(NEW.declined_by) > cardinality(OLD.declined_by) THEN
            v_reason := 'offer_declined';
        ELSE
            v_reason := 'offer_withdrawn';
        END IF;
        v_type := 'dialog.queued';
        v_data := jsonb_build_object('queue_id', NEW.queue_id, 'reason', v_reason);
        IF v_reason = 'offer_declined' THEN
            -- Who said no, for the reports' share of declined offers.
            v_data := v_data || jsonb_build_object('declined_by', to_jsonb(ARRAY(
                SELECT unnest(NEW.declined_by) EXCEPT SELECT unnest(OLD.declined_by))));
        END IF;
    ELSE
        RETURN NULL;
    END IF;
    v_seq := hub_lead_seq(NEW.lead_id);
    IF v_before IS NOT NULL THEN
        v_seq := v_seq + 1;
        INSERT INTO domain_events (type, lead_id, lead_seq, dialog_id, actor, data)
        VALUES (v_before, NEW.lead_id, v_seq, NEW.id, v_actor, v_before_data);
    END IF;
    INSERT INTO domain_events (type, lead_id, lead_seq, dialog_id, operator_id, actor, data)
    VALUES (v_type, NEW.lead_id, v_seq + 1, NEW.id, v_operator, v_actor, v_data);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER dialogs_domain_events
    AFTER UPDATE ON dialogs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.operator_id IS DISTINCT FROM NEW.operator_id
          OR OLD.queued_at IS DISTINCT FROM NEW.queued_at)
    EXECUTE FUNCTION hub_dialog_events();

-- Delivery states of outbound interactions (sent, delivered, seen, failed, ...), from the
-- dispatcher or from a provider's receipt.
CREATE OR REPLACE FUNCTION hub_delivery_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO domain_events (type, lead_id, lead_seq, dialog_id, interaction_id, actor, data)
    VALUES ('interaction.delivery_updated', NEW.lead_id, hub_lead_seq(NEW.lead_id) + 1,
            NEW.dialog_id, NEW.id,
            COALESCE(NULLIF(current_setting('hub.actor', true), ''), 'system'),
            jsonb_build_object('state', NEW.delivery_state,
                               'previous_state', OLD.delivery_state,
                               'error', NEW.delivery_error));
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER interactions_delivery_events
    AFTER UPDATE OF delivery_state ON interactions FOR EACH ROW
    WHEN (OLD.delivery_state IS DISTINCT FROM NEW.delivery_state)
    EXECUTE FUNCTION hub_delivery_events();
