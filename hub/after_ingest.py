"""What follows a committed inbound event, on the node that stored it.

The provider is answered as soon as the event is committed, so nothing here may hold its
request: a new or reopened dialog is handed to the router (`Router.submit` routes it in a
task of its own: it offers it, or has the queue's auto-reply sent when nobody can take it),
pending media wake the fetcher, and the operators holding a dialog of the lead (named by
`hub_ingest` itself, so this costs no query) hear of the new message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hub.notify import Publish, tell_holders
from hub.ports import IngestResult


class AfterIngest:
    def __init__(
        self,
        *,
        submit_dialog: Callable[[int], None],
        wake_media: Callable[[], None],
        publish: Publish,
        nudge_supervisors: Callable[[], Awaitable[None]],
    ) -> None:
        self.submit_dialog = submit_dialog
        self.wake_media = wake_media
        self.publish = publish
        self.nudge_supervisors = nudge_supervisors

    async def __call__(self, result: IngestResult) -> None:
        if result.pending_media:
            self.wake_media()
        if result.dialog_id is None or result.interaction_id is None:
            return
        if result.dialog_created or result.dialog_reopened:
            self.submit_dialog(result.dialog_id)
            await self.nudge_supervisors()
        # Whoever holds a dialog of this lead sees the message in the lead's conversation.
        await tell_holders(self.publish, result.holders, result.dialog_id, result.interaction_id)
