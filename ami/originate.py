"""Click-to-call's one action on the PBX: an Async Originate that rings the manager's phone first and, once
answered, runs the outbound dialplan to the customer's number.

Sent once, never re-sent: the connection refuses to queue actions for a later link (see `NEVER_RESEND`
in ami/connection.py), so a link that drops while the Originate is in flight fails the request instead of
dialling the customer twice when it comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ami.connection import AmiActionFailed, AmiConnection
from calltracking.config import ClickToCallSettings

CLICK_TO_CALL_VARIABLE = "CRM_REQUEST_ID"
ANSWER_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class OriginateOrder:
    request_id: str
    extension: str
    number: str


def originate_action(order: OriginateOrder, settings: ClickToCallSettings) -> dict[str, object]:
    values = {"extension": order.extension, "number": order.number}
    variables = [f"{CLICK_TO_CALL_VARIABLE}={order.request_id}"]
    variables.extend(f"{name}={value}" for name, value in settings.variables.items())
    return {
        "Action": "Originate",
        "ActionID": f"c2c-{order.request_id}",
        "Channel": settings.channel_template.format(**values),
        "Context": settings.context,
        "Exten": order.number,
        "Priority": "1",
        "CallerID": settings.caller_id.format(**values),
        "Timeout": str(int(settings.ring_timeout_seconds * 1000)),
        "Async": "true",
        "Variable": variables,
    }


async def originate(connection: AmiConnection, order: OriginateOrder, settings: ClickToCallSettings) -> None:
    """Ask the PBX to place the call. Returns once the PBX accepted it (the call then runs on its own and
    is followed through its events); raises `AmiUnavailable` when the PBX is not reachable or the link
    dropped before it answered, `AmiActionFailed` when it refused."""
    reply = await connection.send(originate_action(order, settings), ANSWER_TIMEOUT_SECONDS, as_list=False)
    if str(reply.get("Response", "")).lower() != "success":
        raise AmiActionFailed(str(reply.get("Message", "the PBX refused the Originate"))[:200])
