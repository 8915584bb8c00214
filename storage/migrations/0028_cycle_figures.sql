-- A summary reads every care cycle of its period for sixteen figures: six durations and ten
-- counts, each an aggregate of its own that PostgreSQL advances row by row (a month is
-- 80,000 cycles, so 1.3 million aggregate steps, most of a summary's time). The same
-- figures of one cycle, packed once when the cycle is written, are one value to gather:
-- six durations (NaN for none), then the flags (bit k set when the k-th count's condition
-- holds), seven float8 in network order: read as one array of seven columns. storage/reports.py (`PACKED_DURATIONS`,
-- `PACKED_FLAGS`) reads it; the conditions below are those metrics' own, word for word,
-- and tests/storage/test_report_figures.py holds the two ways of counting equal.
ALTER TABLE report_cycles ADD COLUMN figures bytea GENERATED ALWAYS AS (
       float8send(COALESCE(extract(epoch FROM first_response_at - started_at)::float8, 'NaN'))
    || float8send(COALESCE(first_response_bh_s, 'NaN'))
    || float8send(COALESCE(extract(epoch FROM first_assigned_at - started_at)::float8, 'NaN'))
    || float8send(COALESCE(queue_wait_bh_s, 'NaN'))
    || float8send(COALESCE(extract(epoch FROM closed_at - started_at)::float8, 'NaN'))
    || float8send(COALESCE(resolution_bh_s, 'NaN'))
    || float8send((
           CASE WHEN cycle = 1 THEN 1 ELSE 0 END
         | CASE WHEN cycle > 1 THEN 2 ELSE 0 END
         | CASE WHEN first_response_at IS NOT NULL THEN 4 ELSE 0 END
         | CASE WHEN closed_at IS NOT NULL AND first_response_at IS NULL THEN 8 ELSE 0 END
         | CASE WHEN closed_at IS NOT NULL AND first_response_at IS NULL
                     AND first_assigned_at IS NULL THEN 16 ELSE 0 END
         | CASE WHEN closed_at IS NOT NULL AND first_response_at IS NULL
                     AND first_assigned_at IS NOT NULL THEN 32 ELSE 0 END
         | CASE WHEN closed_at IS NOT NULL AND first_response_at IS NOT NULL
                     AND (last_customer_at IS NULL OR last_customer_at <= last_reply_at)
                THEN 64 ELSE 0 END
         | CASE WHEN transfers > 0 THEN 128 ELSE 0 END
         | CASE WHEN lead_first THEN 256 ELSE 0 END)::float8)
) STORED;

-- And a summary reads them from an index that holds them, beside the period's bound and the
-- keys a report splits or filters by: an index-only scan of a month reads a third of the
-- pages a scan of the table did, and none of the table's other columns. It takes the place
-- of the index on the start alone (the CSV export's range is read through it as well).
CREATE INDEX report_cycles_figures ON report_cycles (started_at)
    INCLUDE (operator_id, channel_id, queue_id, lead_id, figures);
DROP INDEX report_cycles_started;
