-- The operator who gave a dialog away to a queue: not offered it back while it waits there
-- (they chose to hand it on); cleared when someone takes it.
ALTER TABLE dialogs ADD COLUMN transferred_from bigint;
