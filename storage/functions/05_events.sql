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

-- p_events: a JSON array of {type, lead_id, dialog_id, interaction_id, operator_id, actor,
-- data}; `p_new_lead` names a lead created in this very transaction, whose events need no
-- lock (nobody else can see it yet) and start at 1.
CREATE OR REPLACE FUNCTION hub_append_events(p_events jsonb, p_new_lead bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_lead bigint;
BEGIN
    FOR v_lead IN
        SELECT DISTINCT (e->>'lead_id')::bigint FROM jsonb_array_elements(p_events) AS e
         WHERE e->>'lead_id' IS NOT NULL ORDER BY 1
    LOOP
        IF v_lead IS DISTINCT FROM p_new_lead THEN
            PERFORM pg_advisory_xact_lock(hub_event_lock(v_lead));
        END IF;
    END LOOP;
    INSERT INTO domain_events (type, lead_id, lead_seq, dialog_id, interaction_id, operator_id,
                               actor, data)
    SELECT x.e->>'type', (x.e->>'lead_id')::bigint,
           CASE WHEN x.e->>'lead_id' IS NOT NULL THEN
               CASE WHEN (x.e->>'lead_id')::bigint = p_new_lead THEN 0
                    ELSE COALESCE((SELECT max(d.lead_seq) FROM domain_events d
                                    WHERE d.lead_id = (x.e->>'lead_id')::bigint), 0) END
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
    v jsonb := '[]'::jsonb;
    v_reason text;
BEGIN
    IF NEW.status = 'closed' THEN
        v := v || jsonb_build_object('type', 'dialog.closed', 'operator_id', OLD.operator_id,
                                     'data', jsonb_build_object('previous_status', OLD.status));
    ELSIF OLD.status = 'closed' THEN
        v := v || jsonb_build_object('type', 'dialog.reopened',
                                     'data', jsonb_build_object('channel_id', NEW.channel_id));
    ELSIF NEW.status = 'offered' THEN
        v := v || jsonb_build_object(
            'type', 'dialog.offered',
            'data', jsonb_build_object('operators', to_jsonb(NEW.offered_to),
                                       'queue_id', NEW.queue_id,
                                       'expires_at', NEW.offer_expires_at));
    ELSIF NEW.status = 'assigned' THEN
        IF OLD.status = 'assigned' THEN
            v := v || jsonb_build_object(
                'type', 'dialog.transferred',
                'data', jsonb_build_object('from_operator_id', OLD.operator_id,
                                           'to_operator_id', NEW.operator_id,
                                           'to_queue_id', NULL));
        END IF;
        v := v || jsonb_build_object(
            'type', 'dialog.assigned', 'operator_id', NEW.operator_id,
            'data', jsonb_build_object(
                'via', CASE WHEN OLD.status = 'offered' AND NEW.operator_id = ANY(OLD.offered_to)
                            THEN 'accept' ELSE 'transfer' END));
    ELSIF NEW.status = 'queued' THEN
        IF NEW.queued_at IS DISTINCT FROM OLD.queued_at THEN
            v_reason := 'transferred';
            v := v || jsonb_build_object(
                'type', 'dialog.transferred',
                'data', jsonb_build_object('from_operator_id', OLD.operator_id,
                                           'to_operator_id', NULL,
                                           'to_queue_id', NEW.queue_id));
        ELSIF OLD.offer_expires_at IS NOT NULL AND OLD.offer_expires_at <= now() THEN
            v_reason := 'offer_expired';
        ELSIF cardinality(NEW.declined_by) > cardinality(OLD.declined_by) THEN
            v_reason := 'offer_declined';
        ELSE
            v_reason := 'offer_withdrawn';
        END IF;
        v := v || jsonb_build_object(
            'type', 'dialog.queued',
            'data', jsonb_build_object('queue_id', NEW.queue_id, 'reason', v_reason));
    END IF;
    IF jsonb_array_length(v) > 0 THEN
        PERFORM hub_append_events(
            (SELECT jsonb_agg(e || jsonb_build_object('lead_id', NEW.lead_id, 'dialog_id', NEW.id))
               FROM jsonb_array_elements(v) AS e));
    END IF;
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
    PERFORM hub_append_events(jsonb_build_array(jsonb_build_object(
        'type', 'interaction.delivery_updated',
        'lead_id', NEW.lead_id, 'dialog_id', NEW.dialog_id, 'interaction_id', NEW.id,
        'data', jsonb_build_object('state', NEW.delivery_state,
                                   'previous_state', OLD.delivery_state,
                                   'error', NEW.delivery_error))));
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER interactions_delivery_events
    AFTER UPDATE OF delivery_state ON interactions FOR EACH ROW
    WHEN (OLD.delivery_state IS DISTINCT FROM NEW.delivery_state)
    EXECUTE FUNCTION hub_delivery_events();
