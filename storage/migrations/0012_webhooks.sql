-- Outgoing webhooks. A subscription names a URL, the event types it wants (none: all) and
-- its signing secrets (more than one while a secret is rotated: each signs every delivery).
-- A delivery is one event for one subscription, made in the transaction that records the
-- event (storage/functions/40_webhooks.sql), so none is ever skipped, and kept with every
-- attempt until it is delivered or dead.
CREATE TABLE webhook_subscriptions (
    id              bigserial PRIMARY KEY,
    url             text NOT NULL CHECK (url ~ '^https?://'),
    events          text[] NOT NULL DEFAULT '{}',
    secrets         text[] NOT NULL CHECK (cardinality(secrets) > 0),
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_success_at timestamptz
);

CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    subscription_id  bigint NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id         bigint NOT NULL,
    lead_id          bigint,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    leased_until     timestamptz,
    last_status_code integer,
    attempt_log      jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    replayed_at      timestamptz,  -- the retry budget counts from here once replayed
    finished_at      timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- A lead's earlier pending delivery holds back its later ones (order per lead).
CREATE INDEX webhook_deliveries_lead ON webhook_deliveries (subscription_id, lead_id, id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_newest ON webhook_deliveries (subscription_id, id DESC);
