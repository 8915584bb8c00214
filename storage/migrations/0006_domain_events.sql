-- One record of what happened: the append-only domain-event log, read by the webhook outbox
-- and the reports. Rows are written by the stored functions in storage/functions (ingest,
-- triggers on dialogs and deliveries) and by storage/events.py, each in the transaction of
-- the change it records.
-- No primary-key b-tree: ids come from one sequence and rows are only appended, in id
-- order, so a BRIN index serves the readers' `id > cursor` scans at a fraction of a b-tree's
-- cost on every insert (three rows for a first contact; measured on the ingest path).
CREATE TABLE domain_events (
    id             bigserial NOT NULL,
    type           text NOT NULL,
    lead_id        bigint,
    lead_seq       integer,
    dialog_id      bigint,
    interaction_id bigint,
    operator_id    bigint,
    actor          text NOT NULL,
    data           jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((lead_id IS NULL) = (lead_seq IS NULL))
);
CREATE INDEX domain_events_id ON domain_events USING brin (id);
-- A lead's events in order; also what the next sequence number is read from.
CREATE UNIQUE INDEX domain_events_lead_seq ON domain_events (lead_id, lead_seq)
    WHERE lead_id IS NOT NULL;

-- From this version on the stored functions live in storage/functions/*.sql and are applied
-- after the migrations on every start; the versions the earlier migrations created go.
DROP FUNCTION hub_ingest(bigint[], bigint, text, text, timestamptz, text, text, jsonb, jsonb,
                         text, text, text[], text[], text[], text, text, text, bigint, jsonb,
                         text, jsonb, integer, boolean);
DROP FUNCTION hub_learn(bigint, text, text[], text[], text[], text, text);
DROP FUNCTION hub_identify(text, text, text[], text[]);
CREATE TABLE schema_functions (
    name       text PRIMARY KEY,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
