"""Who sees which calls: the one rule for every way a call leaves the service through the API (the call
history and one call, its CSV export, recordings, click-to-call requests, callback tasks, the live
WebSocket).

Admins, integrations and supervisors see every call. A manager token sees:

- a call whose `manager` is its extension (the extension that answered it, or that placed it): the calls
  `GET /api/v1/calls` lists for it, with their recordings and click-to-call requests;
- while a call rings at its own phone, that ring (a screen pop: the caller and their CRM entity), and the
  answer if it is the one who answers. Once someone else answers, it learns nothing more of the call;
- the callback tasks assigned to it.

The history's SQL asks for exactly `manager == call_manager` (see `calltracking/calls/repository.py`);
everything decided in Python asks `sees_call`, which is that same comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from calltracking.access.tokens import Principal
from calltracking.calls.record import CallProgress, CallRecord
from calltracking.clicktocall.request import OriginateState


@dataclass(frozen=True, slots=True)
class Audience:
    """What one API caller may see. `extension` is a manager token's extension (None: everything)."""

    extension: str | None

    @classmethod
    def of(cls, principal: Principal) -> Audience:
        # A manager token always names an extension; one without (made by hand) sees nothing, not all.
        return cls(principal.manager or "" if principal.is_manager else None)

    @property
    def sees_everything(self) -> bool:
        return self.extension is None

    @property
    def call_manager(self) -> str | None:
        """The only `manager` whose calls this audience sees, for a query (None: any call)."""
        return self.extension

    def sees_call(self, call: CallRecord) -> bool:
        return self.extension is None or call.manager == self.extension

    def sees_progress(self, progress: CallProgress) -> bool:
        """A ring at its own phone, or the answer by its own extension: nothing of other phones."""
        return self.extension is None or progress.extension == self.extension

    def sees_request(self, state: OriginateState) -> bool:
        """A click-to-call request ringing its own extension first (the call it becomes is its own)."""
        return self.extension is None or state.extension == self.extension

    def callback_manager(self, own_crm_id: str | None, asked: str | None) -> str | None:
        """Whose callback tasks to list: what was asked, or, for a manager, only its own (assigned by CRM
        id, or by extension when the CRM mirror does not know it)."""
        if self.extension is None:
            return asked
        return own_crm_id or f"extension:{self.extension}"
