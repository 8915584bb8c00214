"""Routing dialogs to operators: queues, presence and capacity, offers and their timeouts.

Dialogs are created in the `queued` state by the ingest pipeline; assignment lands here.
"""
