-- Offering a dialog and accepting it, each in one statement (one round trip): the router's
-- and the console's hot paths, run for every dialog an operator is given.

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

-- An offer of a waiting dialog in one statement (the router's hot path): the dialog is
-- locked if it still waits (skipped, o_result 'gone', if it does not or another router holds
-- it), then offered to the first operator of p_ranked (the router's order by its queue's
-- strategy) whose routing lock is free and who is online with room, or to all of p_ranked
-- at once (p_all). o_result 'offered' with o_chosen, or 'nobody'; o_contended: someone was
-- skipped because another router held their lock, so the dialog is worth another try soon.
-- A round-robin queue (p_round_robin) is locked, its ranking rotated after its last choice
-- as read under that lock, and the choice recorded, so two routers never pick the same turn.
CREATE OR REPLACE FUNCTION hub_offer(
    p_dialog bigint, p_ranked bigint[], p_all boolean, p_timeout_s float8, p_queue bigint,
    p_round_robin boolean, p_lock_base bigint, p_fresh_s float8,
    OUT o_result text, OUT o_chosen bigint[], OUT o_contended boolean
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_last bigint;
    v_operator bigint;
BEGIN
    o_contended := false;
    o_chosen := '{}';
    PERFORM 1 FROM dialogs d
     WHERE d.id = p_dialog AND d.status = 'queued' AND d.routable
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        o_result := 'gone';
        RETURN;
    END IF;
    IF p_all THEN
        o_chosen := p_ranked;
    ELSE
        IF p_round_robin THEN
            SELECT q.last_operator_id INTO v_last FROM queues q WHERE q.id = p_queue FOR UPDATE;
            IF v_last IS NOT NULL THEN
                p_ranked := ARRAY(SELECT r FROM unnest(p_ranked) AS r ORDER BY r <= v_last, r);
            END IF;
        END IF;
        FOREACH v_operator IN ARRAY p_ranked LOOP
            -- One offer at a time per operator across nodes: a busy lock means another
            -- router is giving them something right now, so try the next person.
            IF NOT pg_try_advisory_xact_lock(p_lock_base + v_operator) THEN
                o_contended := true;
                CONTINUE;
            END IF;
            -- Read under the lock: what another router committed before it is seen.
            PERFORM 1 FROM operators o JOIN operator_presence p ON p.operator_id = o.id
             WHERE o.id = v_operator AND p.status = 'online'
               AND p.updated_at > now() - make_interval(secs => p_fresh_s)
               AND hub_operator_load(o.id) < o.max_dialogs;
            IF FOUND THEN
                o_chosen := ARRAY[v_operator];
                EXIT;
            END IF;
        END LOOP;
    END IF;
    IF cardinality(o_chosen) = 0 THEN
        o_result := 'nobody';
        RETURN;
    END IF;
    UPDATE dialogs SET status = 'offered', offered_to = o_chosen,
                       offer_expires_at = now() + make_interval(secs => p_timeout_s),
                       queue_id = p_queue, updated_at = now()
     WHERE id = p_dialog;
    IF p_round_robin THEN
        UPDATE queues SET last_operator_id = o_chosen[1] WHERE id = p_queue;
    END IF;
    o_result := 'offered';
END
$$;
