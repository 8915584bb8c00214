-- A hand-over's note for the receiver ("she wants a refund, already checked the order"):
-- written with a transfer, shown with the offer or the assignment it brings, kept in the
-- `dialog.transferred` event, and replaced by the next transfer.
ALTER TABLE dialogs ADD COLUMN handover_comment text
    CHECK (handover_comment IS NULL OR length(handover_comment) BETWEEN 1 AND 1000);
ALTER TABLE dialogs ADD COLUMN handover_by bigint REFERENCES operators (id);

-- The supervisors' desk counts what was missed since the start of the day, every push:
-- missed inbound calls, and dialogs closed without a human answer.
CREATE INDEX calls_missed_in ON calls (created_at) WHERE direction = 'in' AND status = 'missed';
CREATE INDEX dialogs_closed_unanswered ON dialogs (closed_at)
    WHERE status = 'closed' AND first_response_at IS NULL;
-- Open dialogs, listed on the desk: waiting first, oldest first.
CREATE INDEX dialogs_open ON dialogs (queued_at, id) WHERE status <> 'closed';
