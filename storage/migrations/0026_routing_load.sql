-- The router reads every candidate's load (dialogs held plus offers made to them alone) for
-- each dialog it offers, now as one count over what is held at this moment. This index keeps
-- that count to the held dialogs: the one on (operator_id, status) also holds every closed
-- dialog of every operator, a history that only grows.
CREATE INDEX dialogs_assigned_to ON dialogs (operator_id) WHERE status = 'assigned';

-- Every query on an offer's operators asks `$1 = ANY(offered_to)` among offered dialogs,
-- which this GIN index cannot answer (dialogs_offer_expiry, on the same few rows, does);
-- it only cost an insertion, and now and then a cleanup of its pending list, on every offer.
DROP INDEX IF EXISTS dialogs_offered_to;
