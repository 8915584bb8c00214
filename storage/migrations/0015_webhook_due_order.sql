-- Each delivery keeps its event's record, written by the outbox trigger from the rows it
-- already has in hand: the event log has no b-tree on id (0006: a BRIN, for appends), so a
-- lookup per delivery read every page not yet summarized, that is the newest ones, and a
-- claim's join read the whole log.
ALTER TABLE webhook_deliveries ADD COLUMN event jsonb;
UPDATE webhook_deliveries d SET event = jsonb_build_object(
    'id', ev.id, 'type', ev.type, 'lead_id', ev.lead_id, 'dialog_id', ev.dialog_id,
    'interaction_id', ev.interaction_id, 'operator_id', ev.operator_id, 'actor', ev.actor,
    'data', ev.data, 'occurred_at', ev.occurred_at)
  FROM domain_events ev WHERE ev.id = d.event_id;
DELETE FROM webhook_deliveries WHERE event IS NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN event SET NOT NULL;

-- The dispatcher claims each subscription's due deliveries in (next_attempt_at, id) order,
-- up to the room its queue has: with the index on next_attempt_at alone, a burst of events
-- (one transaction, one timestamp) made every claim sort all pending deliveries; in this
-- order a claim reads only the rows it takes.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (subscription_id, next_attempt_at, id)
    WHERE status = 'pending';

-- A claim only sets `leased_until`, which no index holds: with room left on its page the
-- new row version stays there (a HOT update) and no index is written.
ALTER TABLE webhook_deliveries SET (fillfactor = 70);
