-- Every new domain event a CRM may follow gets one delivery row per enabled subscription
-- that wants its type, in the transaction that records it: a statement-level trigger, so a
-- first contact's three events cost one INSERT ... SELECT, and none when nobody subscribes.
-- The delivery keeps the event's record (the log has no b-tree to look it up by id).
-- Nodes are told by NOTIFY (delivered at commit), so their dispatchers sleep until then.
CREATE OR REPLACE FUNCTION hub_webhook_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_made integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE enabled) THEN
        RETURN NULL;
    END IF;
    -- An event's channel: its own word for it, else its dialog's; one without a channel
    -- (a merge, an edit through the API) reaches every subscription that wants its type.
    INSERT INTO webhook_deliveries (subscription_id, event_id, lead_id, event)
    SELECT s.id, e.id, e.lead_id,
           jsonb_build_object('id', e.id, 'type', e.type, 'lead_id', e.lead_id,
                              'dialog_id', e.dialog_id, 'interaction_id', e.interaction_id,
                              'operator_id', e.operator_id, 'actor', e.actor, 'data', e.data,
                              'occurred_at', e.occurred_at, 'trace_id', e.trace_id)
      FROM new_events e
      LEFT JOIN dialogs d ON d.id = e.dialog_id
      JOIN webhook_subscriptions s
        ON s.enabled AND (cardinality(s.events) = 0 OR e.type = ANY(s.events))
       AND (cardinality(s.channels) = 0
            OR COALESCE((e.data->>'channel_id')::bigint, d.channel_id) IS NULL
            OR COALESCE((e.data->>'channel_id')::bigint, d.channel_id) = ANY(s.channels))
     WHERE e.type IN ('lead.created', 'lead.updated', 'lead.merged', 'lead.unmerged',
                      'interaction.created', 'interaction.delivery_updated',
                      'dialog.created', 'dialog.assigned', 'dialog.transferred',
                      'dialog.closed', 'call.missed')
     ORDER BY e.id, s.id
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_made = ROW_COUNT;
    IF v_made > 0 THEN
        PERFORM pg_notify('hub_webhooks', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER domain_events_webhook_outbox
    AFTER INSERT ON domain_events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION hub_webhook_outbox();
