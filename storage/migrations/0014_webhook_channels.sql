-- A subscription may follow only some channels (a CRM that takes the site form's leads and
-- nothing else): empty means every channel.
ALTER TABLE webhook_subscriptions ADD COLUMN channels bigint[] NOT NULL DEFAULT '{}';
