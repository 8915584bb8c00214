-- calls_recovered asks, for each missed call of a period, whether an answered call with the
-- same number followed within recovered_within_s: an index probe per missed call, most of
-- a summary's calls statement (4,000 probes a month in bench/reports.py). The start of
-- the first answered call after each call is kept on the call instead, so the question is
-- a comparison: followed_at <= started_at + recovered_within_s, exactly the probe's answer
-- (the first answered call after it is within the bound if and only if one is).
ALTER TABLE report_calls ADD COLUMN followed_at timestamptz;

-- The one definition: the backfill below, the triggers and bench/reports.py's fill use it.
CREATE FUNCTION report_calls_next_answered(p_phone text, p_after timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT min(b.started_at) FROM report_calls b
     WHERE b.customer_phone = p_phone AND b.answered_at IS NOT NULL AND b.started_at > p_after
$$;

UPDATE report_calls k SET followed_at = report_calls_next_answered(k.customer_phone, k.started_at)
 WHERE k.customer_phone IS NOT NULL;

-- Kept by the table itself, whoever writes it. A changed call gets its own followed_at
-- again; and where an answered call came, went or moved (its old and new start in
-- [lo, hi]), the calls of that number before hi whose next answered call was not already
-- before lo get theirs again: no other call's can have changed. Each statement sees the
-- calls committed before it: writers one at a time, as the fact builder is (its batches
-- hold the report cursor's row), and two writers at once could each miss the other's.
CREATE FUNCTION report_calls_refollow(changed report_calls[]) RETURNS void
LANGUAGE sql AS $$
    WITH changed AS (
        SELECT call_id, customer_phone, started_at, answered_at FROM unnest(changed)
    ), reach AS (
        SELECT customer_phone, min(started_at) AS lo, max(started_at) AS hi
          FROM changed WHERE answered_at IS NOT NULL AND customer_phone IS NOT NULL
         GROUP BY customer_phone
    ), due AS (
        SELECT call_id FROM changed
        UNION
        SELECT k.call_id FROM report_calls k JOIN reach r USING (customer_phone)
         WHERE k.started_at < r.hi AND (k.followed_at IS NULL OR k.followed_at >= r.lo)
    )
    UPDATE report_calls k
       SET followed_at = report_calls_next_answered(k.customer_phone, k.started_at)
      FROM due
     WHERE k.call_id = due.call_id
$$;

-- Statement triggers, the changed rows in their transition tables (an insert's have no old
-- rows, so each event has its own). The update they make sets followed_at alone and is
-- not looked at again (the trigger depth).
CREATE FUNCTION report_calls_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_calls_refollow(ARRAY(SELECT n::report_calls FROM new_calls n));
    RETURN NULL;
END $$;

CREATE FUNCTION report_calls_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        PERFORM report_calls_refollow(
            ARRAY(SELECT n::report_calls FROM new_calls n
                  UNION ALL SELECT o::report_calls FROM old_calls o));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER report_calls_inserted AFTER INSERT ON report_calls
    REFERENCING NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION report_calls_inserted();
CREATE TRIGGER report_calls_updated AFTER UPDATE ON report_calls
    REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION report_calls_updated();
