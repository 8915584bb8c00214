-- A report split or filtered by where leads came from read each fact's lead for its first
-- touch: a month's 80,000 care cycles joined to every lead (PostgreSQL hashed the whole
-- leads table, 0.7 s of a million leads, for the cycles and again for the next responses
-- and the calls), the slowest statement of the console's reports page. The kind of first
-- touch now travels with the facts, written with them from the lead and followed when a
-- merge or its undoing moves them or replaces the surviving lead's first touch
-- (storage/report_facts.py), and the covering indexes hold it. (The update writes every
-- cycle anew: their index-only scans read the table too until autovacuum has been by.)
ALTER TABLE report_cycles ADD COLUMN source text;
ALTER TABLE report_responses ADD COLUMN source text;
ALTER TABLE report_calls ADD COLUMN source text;

UPDATE report_cycles c SET source = l.source->>'kind' FROM leads l WHERE l.id = c.lead_id;
UPDATE report_responses r SET source = c.source FROM report_cycles c WHERE c.id = r.cycle_id;
-- (The first touch has no part in a call's next answered call: 0030's trigger rests.)
ALTER TABLE report_calls DISABLE TRIGGER report_calls_updated;
UPDATE report_calls k SET source = l.source->>'kind' FROM leads l WHERE l.id = k.lead_id;
ALTER TABLE report_calls ENABLE TRIGGER report_calls_updated;

DROP INDEX report_cycles_figures;
CREATE INDEX report_cycles_figures ON report_cycles (started_at)
    INCLUDE (operator_id, channel_id, queue_id, lead_id, source, figures);
DROP INDEX report_responses_covering;
CREATE INDEX report_responses_covering ON report_responses (started_at)
    INCLUDE (operator_id, channel_id, queue_id, lead_id, source, seconds);
