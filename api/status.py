"""What the API may know of the rest of the process: PBX links and the spool, read-only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class ServiceStatus:
    pbx_connected: Callable[[], Mapping[str, bool]] = dict
    # PBXs another process listens to (hot standby): not connected here, and that is not a fault.
    pbx_standing_by: Callable[[], frozenset[str]] = frozenset
    spool_depth: Callable[[], int] = field(default=lambda: 0)
