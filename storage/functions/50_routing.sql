-- The routing state an operator's accept needs, in the database so that an accept is one
-- round trip: the console's hot path, run for every dialog an operator takes.

-- An operator's load: the dialogs they hold plus the offers made to them alone (an offer
-- made to several at once is nobody's load until one of them accepts it). The router reads
-- it under the operator's routing lock before it offers anything to them.
CREATE OR REPLACE FUNCTION hub_operator_load(p_operator bigint) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT ((SELECT count(*) FROM dialogs d
              WHERE d.operator_id = p_operator AND d.status = 'assigned')
          + (SELECT count(*) FROM dialogs d
              WHERE d.status = 'offered' AND d.offered_to = ARRAY[p_operator]))::integer
$$;

-- The operator takes a dialog offered to them: o_result 'accepted', 'offer_gone' (taken by
-- someone else, withdrawn, expired, or never theirs) or 'at_capacity' (it would put them
-- over their max_dialogs: nothing changes). o_offered: whom it was offered to, to withdraw
-- it from the others. Under the operator's routing lock (p_lock), as every offer to them
-- is made, and with p_actor as the actor of the events the change writes. Each statement
-- here reads what was committed before it ran, so the load is read after the lock is held.
CREATE OR REPLACE FUNCTION hub_accept(
    p_dialog bigint, p_operator bigint, p_lock bigint, p_actor text,
    OUT o_result text, OUT o_offered bigint[]
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_max integer;
BEGIN
    PERFORM set_config('hub.actor', p_actor, true), pg_advisory_xact_lock(p_lock);
    SELECT d.offered_to INTO o_offered FROM dialogs d
     WHERE d.id = p_dialog AND d.status = 'offered' AND p_operator = ANY(d.offered_to)
       FOR UPDATE;
    IF NOT FOUND THEN
        o_result := 'offer_gone';
        RETURN;
    END IF;
    SELECT o.max_dialogs INTO v_max FROM operators o WHERE o.id = p_operator;
    -- An offer to them alone is already in their load; one shared with others adds to it.
    IF hub_operator_load(p_operator) + (cardinality(o_offered) <> 1)::integer > v_max THEN
        o_result := 'at_capacity';
        RETURN;
    END IF;
    UPDATE dialogs SET status = 'assigned', operator_id = p_operator, assigned_at = now(),
                       last_operator_id = p_operator, offered_to = '{}', offer_expires_at = NULL,
                       transferred_from = NULL, updated_at = now()
     WHERE id = p_dialog;
    o_result := 'accepted';
END
$$;
