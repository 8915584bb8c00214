"""Outgoing webhooks to CRMs: subscriptions, the durable outbox, Standard Webhooks signing.

The ingest pipeline already hands every committed change to in-transaction hooks as
domain events (`lead.created`, `dialog.created`, `interaction.created`, ...); the outbox
writer plugs in there so an event is stored in the same transaction as its change.
"""
