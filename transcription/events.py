"""The `transcript.ready` webhook: a call's transcript as the CRM receives it, written in the transaction
that stores the transcript. Pure.

`data.utterances` are the transcript's utterances without their word timings (those stay with
`GET /api/v1/calls/{id}/transcript`); `data.bitrix24` is the same in the shape Bitrix24's
`telephony.externalCall.attachTranscription` takes, so a connector forwards it as is: the manager is
`User`, the customer `Client`; a mono recording's `unknown` speaker is sent as `Client` (Bitrix24 has no
third side; `data.utterances` still says `unknown`). Its times are whole seconds from the start of the
call: the start rounded down, the end up, so a phrase's span always covers it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from calltracking.calls.transcript import Speaker, Transcript
from calltracking.crm.call_webhooks import event_id
from calltracking.webhooks.subscription import WebhookEvent

BITRIX24_SIDES = {Speaker.MANAGER: "User", Speaker.CUSTOMER: "Client", Speaker.UNKNOWN: "Client"}


def transcript_ready_event(
    call_id: int, recording_id: int, transcript: Transcript, at: datetime
) -> WebhookEvent:
    return WebhookEvent(
        event_id=event_id("transcript.ready", str(call_id), str(recording_id)),
        type="transcript.ready",
        occurred_at=at,
        data={
            "call_id": call_id,
            "language": transcript.language,
            "utterances": [
                {"speaker": u.speaker.value, "start": u.start, "end": u.end, "text": u.text}
                for u in transcript.utterances
            ],
            "bitrix24": bitrix24_transcript(transcript),
        },
    )


def bitrix24_transcript(transcript: Transcript) -> list[dict[str, Any]]:
    return [
        {
            "SIDE": BITRIX24_SIDES[u.speaker],
            "START_TIME": math.floor(u.start),
            "STOP_TIME": math.ceil(u.end),
            "MESSAGE": u.text,
        }
        for u in transcript.utterances
        if u.text
    ]
