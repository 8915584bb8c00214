-- Telephony. One row per call of a pbx channel, whatever its provider: the facts its events
-- brought (times, who rang, who answered, the provider's outcome), merged in any order, and
-- the status they add up to. A call with a customer's phone number has one interaction (kind
-- `call`) in the lead's dialog on the channel; a call from `anonymous` or an extension keeps
-- its row here and invents no lead.
CREATE TABLE calls (
    id               bigserial PRIMARY KEY,
    channel_id       bigint NOT NULL REFERENCES channels (id),
    provider_call_id text NOT NULL,
    direction        text CHECK (direction IN ('in', 'out')),
    from_number      text,  -- E.164 where it is a phone number, else as the PBX gave it
    to_number        text,
    customer_phone   text CHECK (customer_phone ~ '^\+[1-9][0-9]{3,15}$'),
    status           text NOT NULL DEFAULT 'ringing'
                     CHECK (status IN ('ringing', 'in_progress', 'answered', 'missed', 'busy',
                                       'failed')),
    outcome          text CHECK (outcome IN ('answered', 'missed', 'busy', 'failed')),
    cause            text,
    rang             text[] NOT NULL DEFAULT '{}',  -- extensions that rang
    extension        text,  -- the extension that answered (or placed an outbound call)
    operator_id      bigint REFERENCES operators (id),
    started_at       timestamptz,
    answered_at      timestamptz,
    ended_at         timestamptz,
    duration_s       integer CHECK (duration_s >= 0),
    recording_ref    text,
    dialog_id        bigint REFERENCES dialogs (id),
    interaction_id   bigint UNIQUE REFERENCES interactions (id),
    applied          text[] NOT NULL DEFAULT '{}',  -- the provider events already merged
    popped           bigint[] NOT NULL DEFAULT '{}',  -- operators shown the screen pop
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, provider_call_id)
);
CREATE INDEX calls_customer ON calls (customer_phone, created_at) WHERE customer_phone IS NOT NULL;
CREATE INDEX calls_newest ON calls (id DESC);

-- A missed inbound call leaves a task: call the customer back. Routing offers its dialog
-- like any other; an answered call with the number, either way, closes it.
CREATE TABLE callbacks (
    id             bigserial PRIMARY KEY,
    call_id        bigint NOT NULL UNIQUE REFERENCES calls (id),
    dialog_id      bigint NOT NULL REFERENCES dialogs (id),
    phone          text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    closed_by_call bigint REFERENCES calls (id)
);
CREATE INDEX callbacks_open_phone ON callbacks (phone) WHERE closed_at IS NULL;
CREATE INDEX callbacks_open_dialog ON callbacks (dialog_id) WHERE closed_at IS NULL;

-- A dialog opened by a ringing call is the PBX's to route, not the hub's: it waits outside
-- the hub's queues until the call ends (answered: its operator's; missed: a callback, routed).
ALTER TABLE dialogs ADD COLUMN routable boolean NOT NULL DEFAULT true;
DROP INDEX IF EXISTS dialogs_waiting;
CREATE INDEX dialogs_waiting ON dialogs (queued_at, id) WHERE status = 'queued' AND routable;

-- A caller the business does not take calls from (the generic provider rejects them busy).
ALTER TABLE leads ADD COLUMN blocked boolean NOT NULL DEFAULT false;
