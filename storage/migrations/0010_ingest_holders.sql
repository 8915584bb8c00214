-- hub_ingest gains a result column (o_holders: who holds a dialog of the lead, told of the
-- new message without another query), which CREATE OR REPLACE cannot add: the old one goes,
-- and storage/functions/30_ingest.sql creates the new one right after the migrations.
DROP FUNCTION IF EXISTS hub_ingest(
    bigint[], bigint, text, text, timestamptz, text, text, jsonb, jsonb, text, text, text[],
    text[], text[], text, text, text, bigint, jsonb, text, jsonb, integer, boolean, text, text[],
    text[]);
