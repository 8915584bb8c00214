-- A report counts the presence stretches that overlap its period: those that began before
-- its end and end after its start (or have not ended). The stretches of every operator's
-- every day pile up, and the start alone narrows nothing; this index finds the ones that end
-- after the period's start (an open one ends at infinity here), a month out of a year.
CREATE INDEX report_presence_ends ON report_presence ((COALESCE(ended_at, 'infinity'::timestamptz)));
