-- Where a lead came from: its first touch, kept as it was (`kind`: the channel kind, `call`,
-- `api` or `import`; `channel_id`; for forms and the embed script the `page`, `referrer` and
-- `utm` parameters). Leads made before this are backfilled from their first interaction and
-- marked so (what the old data cannot tell, such as the utm parameters, stays empty).
ALTER TABLE leads ADD COLUMN source jsonb;
UPDATE leads l
SET source = jsonb_strip_nulls(jsonb_build_object(
        'kind', f.kind, 'channel_id', f.channel_id, 'at', f.occurred_at,
        'page', f.extra->>'page', 'backfilled', true))
FROM (SELECT DISTINCT ON (lead_id) lead_id, kind, channel_id, occurred_at, extra
      FROM interactions ORDER BY lead_id, id) f
WHERE f.lead_id = l.id;
-- Reports filter leads by where they came from.
CREATE INDEX leads_source_kind ON leads ((source->>'kind'), created_at);
