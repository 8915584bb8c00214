-- Reports read facts, not the live tables: one row per care cycle (a dialog from its creation
-- or reopening to its close), per call, per offer and per stretch of an operator's presence.
-- The fact builder (hub/reports/facts.py) folds them from the domain-event log behind a
-- cursor that never skips an event:
--
-- * every event records the id of the transaction that wrote it (`txid`); the builder reads
--   only events of transactions older than every transaction still running (the snapshot's
--   xmin), in (txid, id) order. No transaction that could still commit sits below that line,
--   so what lies below it is final and nothing read past is ever found later;
-- * a lead's events are then applied in their lead_seq order (gapless, in commit order), from
--   the last one applied (report_leads), so a dialog's events are folded in the order they
--   happened even when their transactions' ids are not.
-- (bigint, as txid_current() gives it: xid8 has no block-range operator class.)
ALTER TABLE domain_events ADD COLUMN txid bigint;
ALTER TABLE domain_events ALTER COLUMN txid SET DEFAULT txid_current();
-- Transaction ids grow with the log, as its ids do: a block-range index serves the cursor.
CREATE INDEX domain_events_txid ON domain_events USING brin (txid);

CREATE TABLE report_cursor (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    txid     bigint NOT NULL,
    event_id bigint NOT NULL,
    built_at timestamptz
);
-- Events written before this migration are not read: the backfill below stands for them.
INSERT INTO report_cursor (txid, event_id) VALUES (txid_current(), 0);

CREATE TABLE report_leads (
    lead_id bigint PRIMARY KEY,
    seq     integer NOT NULL
);
INSERT INTO report_leads (lead_id, seq)
SELECT lead_id, max(lead_seq) FROM domain_events WHERE lead_id IS NOT NULL GROUP BY lead_id;

CREATE TABLE report_cycles (
    id                    bigserial PRIMARY KEY,
    dialog_id             bigint NOT NULL REFERENCES dialogs (id),
    cycle                 integer NOT NULL,  -- 1 for the dialog's creation, 2+ for reopenings
    lead_id               bigint NOT NULL,
    channel_id            bigint NOT NULL,
    queue_id              bigint,
    held_by               bigint,  -- the operator who held it last
    started_at            timestamptz NOT NULL,
    first_assigned_at     timestamptz,
    first_response_at     timestamptz,
    first_response_by     bigint,
    first_response_via    text CHECK (first_response_via IN ('message', 'call')),
    closed_at             timestamptz,
    last_customer_at      timestamptz,
    last_reply_at         timestamptz,
    awaiting_since        timestamptz,  -- a customer message after a reply, not yet answered
    next_response_s       double precision[] NOT NULL DEFAULT '{}',
    messages_in           integer NOT NULL DEFAULT 0,
    messages_out          integer NOT NULL DEFAULT 0,
    offers                integer NOT NULL DEFAULT 0,
    transfers             integer NOT NULL DEFAULT 0,
    -- Credited to who answered first, else to who held it last.
    operator_id           bigint GENERATED ALWAYS AS (COALESCE(first_response_by, held_by)) STORED,
    queue_wait_s          double precision
        GENERATED ALWAYS AS (extract(epoch FROM first_assigned_at - started_at)) STORED,
    first_response_s      double precision
        GENERATED ALWAYS AS (extract(epoch FROM first_response_at - started_at)) STORED,
    resolution_s          double precision
        GENERATED ALWAYS AS (extract(epoch FROM closed_at - started_at)) STORED,
    queue_wait_bh_s       double precision,  -- the same, counting only the queue's open hours
    first_response_bh_s   double precision,
    resolution_bh_s       double precision,
    hours_due             boolean NOT NULL DEFAULT false,  -- business seconds to (re)compute
    lead_first            boolean NOT NULL DEFAULT false,  -- the lead's first cycle
    backfilled            boolean NOT NULL DEFAULT false,
    UNIQUE (dialog_id, cycle)
);
CREATE INDEX report_cycles_started ON report_cycles (started_at);
CREATE INDEX report_cycles_operator ON report_cycles (operator_id, started_at);
CREATE INDEX report_cycles_lead ON report_cycles (lead_id, started_at);
CREATE INDEX report_cycles_hours_due ON report_cycles (id) WHERE hours_due;

-- Existing dialogs: one cycle each, from what the tables still say. Reopenings, offers and
-- next responses cannot be told any more and stay empty; the rows say they are backfilled.
INSERT INTO report_cycles (dialog_id, cycle, lead_id, channel_id, queue_id, held_by,
                           started_at, first_assigned_at, first_response_at,
                           first_response_by, first_response_via, closed_at,
                           last_customer_at, last_reply_at, messages_in, messages_out,
                           hours_due, backfilled)
SELECT d.id, 1, d.lead_id, d.channel_id, d.queue_id, d.operator_id, d.created_at,
       d.assigned_at, d.first_response_at,
       CASE WHEN d.first_response_at IS NOT NULL THEN d.operator_id END,
       CASE WHEN d.first_response_at IS NOT NULL THEN 'message' END,
       d.closed_at, i.last_in, i.last_out, COALESCE(i.n_in, 0), COALESCE(i.n_out, 0),
       true, true
  FROM dialogs d
  LEFT JOIN LATERAL (
      SELECT max(x.occurred_at) FILTER (WHERE x.direction = 'in') AS last_in,
             max(x.occurred_at) FILTER (WHERE x.direction = 'out' AND x.kind <> 'note'
                                        AND x.author IS DISTINCT FROM 'auto-reply'
                                        AND x.author NOT LIKE 'api:%') AS last_out,
             count(*) FILTER (WHERE x.direction = 'in') AS n_in,
             count(*) FILTER (WHERE x.direction = 'out' AND x.kind <> 'note'
                              AND x.author IS DISTINCT FROM 'auto-reply'
                              AND x.author NOT LIKE 'api:%') AS n_out
        FROM interactions x WHERE x.dialog_id = d.id) i ON true;
UPDATE report_cycles SET lead_first = true
 WHERE id IN (SELECT DISTINCT ON (lead_id) id FROM report_cycles
               ORDER BY lead_id, started_at, id);

-- Each wait for a next response, one row a value (the cycle keeps them as an array too, for
-- the fold): a report reads them without unnesting every cycle of the period.
CREATE TABLE report_responses (
    cycle_id    bigint NOT NULL REFERENCES report_cycles (id) ON DELETE CASCADE,
    n           integer NOT NULL,
    started_at  timestamptz NOT NULL,  -- the cycle's start: it counts in the cycle's period
    lead_id     bigint NOT NULL,
    channel_id  bigint NOT NULL,
    queue_id    bigint,
    operator_id bigint,
    seconds     double precision NOT NULL,
    PRIMARY KEY (cycle_id, n)
);
CREATE INDEX report_responses_started ON report_responses (started_at);
-- Each offer of a cycle to an operator, and how it ended.
CREATE TABLE report_offers (
    id          bigserial PRIMARY KEY,
    cycle_id    bigint NOT NULL REFERENCES report_cycles (id) ON DELETE CASCADE,
    operator_id bigint NOT NULL,
    offered_at  timestamptz NOT NULL,
    outcome     text CHECK (outcome IN ('accepted', 'declined', 'expired', 'withdrawn')),
    ended_at    timestamptz
);
CREATE INDEX report_offers_operator ON report_offers (operator_id, offered_at);
CREATE INDEX report_offers_offered ON report_offers (offered_at);
CREATE INDEX report_offers_open ON report_offers (cycle_id) WHERE outcome IS NULL;

-- Calls, one row each, from their call.* events; backfilled from the calls table.
CREATE TABLE report_calls (
    call_id        bigint PRIMARY KEY,
    channel_id     bigint NOT NULL,
    lead_id        bigint,
    dialog_id      bigint,
    direction      text,
    customer_phone text,
    operator_id    bigint,
    status         text NOT NULL,
    started_at     timestamptz NOT NULL,
    answered_at    timestamptz,
    ended_at       timestamptz,
    talk_s         double precision,
    backfilled     boolean NOT NULL DEFAULT false
);
CREATE INDEX report_calls_started ON report_calls (started_at);
CREATE INDEX report_calls_phone ON report_calls (customer_phone, started_at)
    WHERE customer_phone IS NOT NULL;
INSERT INTO report_calls (call_id, channel_id, lead_id, dialog_id, direction, customer_phone,
                          operator_id, status, started_at, answered_at, ended_at, talk_s,
                          backfilled)
SELECT c.id, c.channel_id, d.lead_id, c.dialog_id, c.direction, c.customer_phone,
       c.operator_id, c.status, COALESCE(c.started_at, c.created_at), c.answered_at,
       c.ended_at, c.duration_s, true
  FROM calls c LEFT JOIN dialogs d ON d.id = c.dialog_id
 WHERE c.status IN ('answered', 'missed', 'busy', 'failed');

-- Stretches of an operator's presence (online or away; offline is the absence of a row).
CREATE TABLE report_presence (
    id          bigserial PRIMARY KEY,
    operator_id bigint NOT NULL,
    status      text NOT NULL CHECK (status IN ('online', 'away')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX report_presence_operator ON report_presence (operator_id, started_at);
CREATE UNIQUE INDEX report_presence_open ON report_presence (operator_id) WHERE ended_at IS NULL;
INSERT INTO report_presence (operator_id, status, started_at)
SELECT operator_id, status, updated_at FROM operator_presence
 WHERE status IN ('online', 'away') AND updated_at > now() - interval '90 seconds';
