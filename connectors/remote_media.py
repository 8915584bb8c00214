"""Media that an event only references: recorded now, fetched after the provider's 200."""

from __future__ import annotations

from hub.domain import Attachment, AttachmentState


def remote_attachment(
    name: str, content_type: str, size: int | None, ref: str, limit: int
) -> Attachment:
    """An attachment to fetch later by `ref`, or refused at once when its announced size is
    over the limit (the interaction keeps the note; the file is never downloaded)."""
    if size is not None and size > limit:
        return Attachment(
            name=name,
            content_type=content_type,
            size=size,
            state=AttachmentState.REFUSED,
            note=f"the file ({size} bytes) is over the {limit} byte limit and was not downloaded",
        )
    return Attachment(
        name=name,
        content_type=content_type,
        size=size or 0,
        state=AttachmentState.PENDING,
        remote_ref=ref,
    )
