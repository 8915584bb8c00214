-- A summary reads a month of next responses, of offers and of new leads, some 80,000 rows
-- of each, for a few columns. Through an index on the bound alone that is a visit to the
-- table for every row (a bitmap scan: every page of the stretch, each holding columns the
-- report never reads). These indexes hold what the reports read beside the bound, so a
-- month is an index-only scan (storage/reports.py `Source.covers` says which statements
-- may take it). Each takes the place of the index on the bound alone; new leads keep
-- their index by first-touch kind, which the lead list filters by.
CREATE INDEX report_responses_covering ON report_responses (started_at)
    INCLUDE (operator_id, channel_id, queue_id, lead_id, seconds);
DROP INDEX report_responses_started;

CREATE INDEX report_offers_covering ON report_offers (offered_at)
    INCLUDE (operator_id, cycle_id, outcome);
DROP INDEX report_offers_offered;

CREATE INDEX leads_created ON leads (created_at) INCLUDE (merged_into);
