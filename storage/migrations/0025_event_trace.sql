-- The trace id of the inbound event whose transaction wrote a domain event (the hub's
-- `hub.trace_id` setting, set by hub_ingest), so what follows from the event in another
-- task or on another node (its webhook deliveries) is logged under the same id. Adding a
-- column whose default is not volatile rewrites nothing: old rows read NULL.
ALTER TABLE domain_events
    ADD COLUMN trace_id text DEFAULT NULLIF(current_setting('hub.trace_id', true), '');
