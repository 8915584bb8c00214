"""Admin work on what the hub is made of (operators, API keys), shared by the REST API and
the CLI: the checks, the change and its record in the domain-event log, in one place."""
