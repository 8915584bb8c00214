"""The email channel (issue 10), being built: `parse` reads one message as the hub needs it.
The IMAP poller, the SMTP sender and the channel descriptor follow; until then the kind is not
registered in `connectors/registry.py`."""
