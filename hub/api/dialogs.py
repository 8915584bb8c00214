"""Dialogs and the files attached to their interactions."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from hub.api.access import ensure_dialog_visible, ensure_lead_visible, restricted_to
from hub.api.auth import principal_of, scoped
from hub.api.shapes import (
    dialog_json,
    interaction_json,
    lead_json,
    newest_first,
    page,
    paging,
    path_id,
)
from hub.context import hub_of
from hub.domain import Attachment, DialogStatus
from hub.errors import ApiError, HubError, not_found, unprocessable
from hub.httputil import (
    handover_comment,
    is_id,
    media_type,
    read_json_object,
    refuse_unusable_text,
    whole_number,
)
from hub.ports import TooLarge
from storage import channels, dialogs, interactions, leads


@scoped("dialogs")
async def list_dialogs(request: web.Request) -> web.Response:
    hub = hub_of(request)
    after_id, limit = paging(request)
    status = request.query.get("status") or None
    if status is not None and status not in {s.value for s in DialogStatus}:
        raise ApiError(400, "bad_query", "status must be queued, offered, assigned or closed")
    raw_operator = request.query.get("operator") or None
    raw_lead = request.query.get("lead_id") or None
    channel = request.query.get("channel") or None
    operator = whole_number(raw_operator, "operator") if raw_operator else None
    lead = whole_number(raw_lead, "lead_id") if raw_lead else None
    before_id = newest_first(request)  # an operator's recently closed dialogs, newest first
    only = restricted_to(request)
    async with hub.pool.acquire() as conn:
        found = await dialogs.search(
            conn,
            status=status,
            operator_id=only if only is not None else operator,
            lead_id=lead,
            channel=channel,
            after_id=after_id,
            limit=limit,
            before_id=before_id,
        )
        people = await leads.get_many(conn, list({d.lead_id for d in found}))
    items = []
    for d in found:
        body = dialog_json(d)
        person = people.get(d.lead_id)
        body["lead"] = lead_json(person) if person else None
        items.append(body)
    return web.json_response(page(items, limit))


@scoped("dialogs")
async def get_dialog(request: web.Request) -> web.Response:
    """One dialog with its interactions."""
    hub = hub_of(request)
    dialog_id = path_id(request)
    await ensure_dialog_visible(request, dialog_id)
    async with hub.pool.acquire() as conn:
        dialog = await dialogs.get(conn, dialog_id)
        if dialog is None:
            raise not_found(f"dialog {dialog_id} not found")
        items = await interactions.of_dialog(conn, dialog_id)
    body = dialog_json(dialog)
    body["interactions"] = [interaction_json(i) for i in items]
    return web.json_response(body)


@scoped("leads")
async def get_attachment(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    attachment_id = path_id(request)
    async with hub.pool.acquire() as conn:
        row = await interactions.attachment(conn, attachment_id)
    missing = not_found(f"attachment {attachment_id} not found")
    if row is None:
        raise missing
    try:
        await ensure_lead_visible(request, row["lead_id"])
    except HubError:
        raise missing from None  # the same answer as for an id that does not exist
    if not row["storage_path"]:
        raise ApiError(409, "not_stored", "the file is not stored (yet, or was refused)")
    try:
        path = hub.attachments.path_of(row["storage_path"])
    except ValueError:
        raise missing from None
    if not path.is_file():
        raise ApiError(410, "gone", "the file is no longer stored")
    safe_name = row["name"].replace('"', "")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": row["content_type"],
            # Customer files are never rendered by the browser in the hub's origin.
            "Content-Disposition": f'attachment; filename="{safe_name}"',
        },
    )


MAX_TEXT = 4096  # Telegram's and VK's limit for one message


async def _message_parts(request: web.Request) -> tuple[str | None, list[Attachment]]:
    hub = hub_of(request)
    kind = media_type(request)
    if kind == "application/json":
        body = await read_json_object(request, hub.settings.max_body_bytes)
        value = body.get("text")
        if value is not None and not isinstance(value, str):
            raise unprocessable("invalid_field", "text must be a string")
        return value, []
    if kind != "multipart/form-data":
        raise ApiError(
            415, "unsupported_media_type", "send application/json or multipart/form-data"
        )
    text: str | None = None
    files: list[Attachment] = []
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "malformed_form", "nested multipart is not accepted")
            if part.filename:
                if len(files) >= hub.settings.max_form_files:
                    raise ApiError(
                        413, "too_many_files", f"at most {hub.settings.max_form_files} files"
                    )
                files.append(
                    await hub.attachments.save(
                        _chunks(part),
                        part.filename,
                        part.headers.get("Content-Type", ""),
                        hub.settings.max_upload_bytes,
                    )
                )
            elif part.name == "text":
                raw = bytearray()
                while chunk := await part.read_chunk(8192):
                    raw.extend(chunk)
                    if len(raw) > MAX_TEXT * 4:  # UTF-8 takes at most 4 bytes a character
                        raise unprocessable(
                            "text_too_long", f"a message holds at most {MAX_TEXT} characters"
                        )
                text = bytes(raw).decode("utf-8", errors="replace")
                refuse_unusable_text(text, "text")
    except TooLarge as exc:
        await hub.attachments.discard(tuple(files))
        raise ApiError(413, "file_too_large", str(exc)) from None
    except (ValueError, HttpProcessingError):  # a part's header aiohttp refuses (a NUL)
        await hub.attachments.discard(tuple(files))
        raise ApiError(400, "malformed_form", "the multipart body cannot be parsed") from None
    except BaseException:
        # Whatever ends the request (a refusal, the client leaving), no saved file stays.
        await hub.attachments.discard(tuple(files))
        raise
    return text, files


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(65536):
        yield chunk


@scoped("dialogs")
async def send_message(request: web.Request) -> web.Response:
    """Reply on the dialog's channel; answers with the outbound interaction and its state."""
    hub = hub_of(request)
    dialog_id = path_id(request)
    await ensure_dialog_visible(request, dialog_id, holding=True)
    async with hub.pool.acquire() as conn:
        dialog = await dialogs.get(conn, dialog_id)
        channel = await channels.get(conn, dialog.channel_id) if dialog else None
    if dialog is None or channel is None:
        raise not_found(f"dialog {dialog_id} not found")
    text, files = await _message_parts(request)
    try:
        text = text.strip() if text else None
        if not text and not files:
            raise unprocessable("empty_message", "send text, a file, or both")
        if text and len(text) > MAX_TEXT:
            raise unprocessable("text_too_long", f"a message holds at most {MAX_TEXT} characters")
        kind = hub.kinds.get(channel.kind)
        if files and (kind is None or not kind.capabilities.sends_files):
            raise unprocessable("files_not_supported", f"{channel.kind} dialogs take text only")
    except ApiError:
        await hub.attachments.discard(tuple(files))
        raise
    principal = principal_of(request)
    interaction_id = await hub.outbound.send(
        dialog_id, text, files, principal.author, operator_id=principal.operator_id
    )
    return await created_interaction(request, interaction_id)


@scoped("dialogs")
async def add_note(request: web.Request) -> web.Response:
    """An internal note in a dialog the caller may see (an operator: one they hold or are
    offered; a supervisor or API key: any): colleagues and CRMs see it, the customer never."""
    hub = hub_of(request)
    dialog_id = path_id(request)
    await ensure_dialog_visible(request, dialog_id)
    body = await read_json_object(request, hub.settings.max_body_bytes)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise unprocessable("empty_message", "a note needs text")
    if len(text) > MAX_TEXT:
        raise unprocessable("text_too_long", f"a note holds at most {MAX_TEXT} characters")
    note_id = await hub.outbound.note(dialog_id, text.strip(), principal_of(request).author)
    return await created_interaction(request, note_id)


async def created_interaction(request: web.Request, interaction_id: int) -> web.Response:
    """201 with the interaction just stored, as the API shows it."""
    async with hub_of(request).pool.acquire() as conn:
        stored = await interactions.get(conn, interaction_id)
    assert stored is not None
    return web.json_response(interaction_json(stored), status=201)


@scoped("dialogs")
async def transfer_dialog(request: web.Request) -> web.Response:
    """Give the dialog to an operator (`{"operator_id"}`: at once, if they are online with
    room) or to a queue (`{"queue"}`: offered by its rules), as a CRM assigning work; an
    optional `comment` goes with it to the receiver."""
    hub = hub_of(request)
    dialog_id = path_id(request)
    await ensure_dialog_visible(request, dialog_id, holding=True)
    body = await read_json_object(request, hub.settings.max_body_bytes)
    operator_id, queue = body.get("operator_id"), body.get("queue")
    if (operator_id is None) == (queue is None):
        raise unprocessable("invalid_field", "give operator_id or queue, one of them")
    principal = principal_of(request)
    handover = (handover_comment(body.get("comment")), principal.operator_id)
    if operator_id is not None:
        if not is_id(operator_id):
            raise unprocessable("invalid_field", "operator_id must be an operator's id")
        await hub.router.transfer_to_operator(dialog_id, operator_id, principal.actor, handover)
    else:
        if not isinstance(queue, str):
            raise unprocessable("invalid_field", "queue must be a queue's name")
        await hub.router.transfer_to_queue(dialog_id, queue, principal.actor, handover)
    return await _dialog_answer(request, dialog_id)


@scoped("dialogs")
async def close_dialog(request: web.Request) -> web.Response:
    hub = hub_of(request)
    dialog_id = path_id(request)
    await ensure_dialog_visible(request, dialog_id, holding=True)
    principal = principal_of(request)
    await hub.router.close(dialog_id, principal.operator_id)
    return await _dialog_answer(request, dialog_id)


async def _dialog_answer(request: web.Request, dialog_id: int) -> web.Response:
    async with hub_of(request).pool.acquire() as conn:
        dialog = await dialogs.get(conn, dialog_id)
    if dialog is None:
        raise not_found(f"dialog {dialog_id} not found")
    return web.json_response(dialog_json(dialog))
