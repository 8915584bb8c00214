-- Offers split by channel, queue or first touch read them from the offer's care cycle: a
-- month's 77,000 offers joined to the cycles, which PostgreSQL answered by hashing all of
-- them (0.9 s at a million cycles). The offer keeps its cycle's channel, queue and first
-- touch instead, written with it and followed when the cycle changes (a transfer to another
-- queue, a merge): still the cycle's, as the metrics define them. An index on the cycle
-- finds a cycle's offers for that (it stands for the one on its open offers alone).
ALTER TABLE report_offers ADD COLUMN channel_id bigint;
ALTER TABLE report_offers ADD COLUMN queue_id bigint;
ALTER TABLE report_offers ADD COLUMN source text;

UPDATE report_offers o
   SET channel_id = c.channel_id, queue_id = c.queue_id, source = c.source
  FROM report_cycles c WHERE c.id = o.cycle_id;

CREATE INDEX report_offers_cycle ON report_offers (cycle_id);
DROP INDEX report_offers_open;
DROP INDEX report_offers_covering;
CREATE INDEX report_offers_covering ON report_offers (offered_at)
    INCLUDE (operator_id, channel_id, queue_id, source, outcome);
