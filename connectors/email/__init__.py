"""The email channel (issue 10), being built: `parse` reads one message as the hub needs it,
`imap.MailboxWatcher` takes every message of a folder exactly once (IDLE, or polling),
`smtp` builds and sends replies that thread. The channel's settings, its connector (message →
lead and thread, bounces, form replies) and descriptor follow; until then the kind is not
registered in `connectors/registry.py`."""
