-- `GET /metrics` counts the dead-lettered webhook deliveries at every scrape: a partial
-- index keeps that a count of the few dead ones instead of a scan of every delivery kept.
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (subscription_id) WHERE status = 'dead';
