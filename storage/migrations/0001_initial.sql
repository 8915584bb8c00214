-- The hub's first schema: channels, leads with their normalized contact keys,
-- dialogs, interactions, attachments, merges, the unsorted inbox, operators, API keys.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE channels (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('telegram', 'vk', 'viber', 'email', 'pbx', 'form')),
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    enabled     boolean NOT NULL DEFAULT true,
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE leads (
    id               bigserial PRIMARY KEY,
    name             text,
    name_suggestions text[] NOT NULL DEFAULT '{}',
    merged_into      bigint REFERENCES leads (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leads_name_trgm ON leads USING gin (lower(name) gin_trgm_ops);
CREATE INDEX leads_merged_into ON leads (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE lead_phones (
    lead_id    bigint NOT NULL REFERENCES leads (id),
    phone      text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{3,15}$'),
    extension  text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, phone)
);
CREATE INDEX lead_phones_phone ON lead_phones (phone);

CREATE TABLE lead_emails (
    lead_id    bigint NOT NULL REFERENCES leads (id),
    email      text NOT NULL CHECK (email = lower(email)),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, email)
);
CREATE INDEX lead_emails_email ON lead_emails (email);

CREATE TABLE lead_identities (
    lead_id     bigint NOT NULL REFERENCES leads (id),
    kind        text NOT NULL,
    external_id text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, external_id)
);
CREATE INDEX lead_identities_lead ON lead_identities (lead_id);

CREATE TABLE dialogs (
    id          bigserial PRIMARY KEY,
    lead_id     bigint NOT NULL REFERENCES leads (id),
    channel_id  bigint NOT NULL REFERENCES channels (id),
    status      text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'offered', 'assigned', 'closed')),
    operator_id bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz
);
-- One open dialog per lead and channel: concurrent messages thread into the same one.
CREATE UNIQUE INDEX dialogs_open_per_lead_channel ON dialogs (lead_id, channel_id)
    WHERE status <> 'closed';
CREATE INDEX dialogs_status ON dialogs (status, id);
CREATE INDEX dialogs_operator ON dialogs (operator_id, status) WHERE operator_id IS NOT NULL;

CREATE TABLE interactions (
    id             bigserial PRIMARY KEY,
    lead_id        bigint NOT NULL REFERENCES leads (id),
    dialog_id      bigint NOT NULL REFERENCES dialogs (id),
    channel_id     bigint NOT NULL REFERENCES channels (id),
    kind           text NOT NULL,
    direction      text NOT NULL CHECK (direction IN ('in', 'out')),
    text           text,
    subject        text,
    occurred_at    timestamptz NOT NULL,
    external_id    text NOT NULL,
    call           jsonb,
    extra          jsonb NOT NULL DEFAULT '{}'::jsonb,
    payload_hash   text,
    delivery_state text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, external_id)
);
CREATE INDEX interactions_lead ON interactions (lead_id, occurred_at, id);
CREATE INDEX interactions_dialog ON interactions (dialog_id, id);

CREATE TABLE attachments (
    id             bigserial PRIMARY KEY,
    interaction_id bigint NOT NULL REFERENCES interactions (id),
    name           text NOT NULL,
    content_type   text NOT NULL,
    size           bigint NOT NULL,
    storage_path   text NOT NULL,
    sha256         text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_interaction ON attachments (interaction_id);

-- A merge remembers exactly what it moved so that it can be undone.
CREATE TABLE lead_merges (
    id          bigserial PRIMARY KEY,
    survivor_id bigint NOT NULL REFERENCES leads (id),
    merged_id   bigint NOT NULL REFERENCES leads (id),
    moved       jsonb NOT NULL,
    merged_by   text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    undone_at   timestamptz
);
CREATE INDEX lead_merges_pair ON lead_merges (survivor_id, merged_id) WHERE undone_at IS NULL;

CREATE TABLE unsorted (
    id          bigserial PRIMARY KEY,
    channel_id  bigint NOT NULL REFERENCES channels (id),
    external_id text NOT NULL,
    inbound     jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'accepted', 'linked', 'declined')),
    lead_id     bigint REFERENCES leads (id),
    interaction_id bigint REFERENCES interactions (id),
    decided_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    UNIQUE (channel_id, external_id)
);
CREATE INDEX unsorted_pending ON unsorted (id) WHERE status = 'pending';

CREATE TABLE operators (
    id            bigserial PRIMARY KEY,
    login         text NOT NULL UNIQUE,
    name          text NOT NULL,
    role          text NOT NULL DEFAULT 'operator'
                  CHECK (role IN ('operator', 'supervisor', 'admin')),
    skills        text[] NOT NULL DEFAULT '{}',
    max_dialogs   integer NOT NULL DEFAULT 5 CHECK (max_dialogs > 0),
    extension     text UNIQUE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    prefix       text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
