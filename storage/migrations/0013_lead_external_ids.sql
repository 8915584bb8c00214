-- A CRM's own ids for a lead (`{"bitrix24": "123"}`): a CRM creating or updating a lead by
-- its id finds the same lead every time, so its retries never make a second one.
CREATE TABLE lead_external_ids (
    system      text NOT NULL CHECK (system ~ '^[a-z0-9][a-z0-9_.-]{0,31}$'),
    external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
    lead_id     bigint NOT NULL REFERENCES leads (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, external_id)
);
CREATE INDEX lead_external_ids_lead ON lead_external_ids (lead_id);
