"""Typed keys for what the app shares with its handlers."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.access import RateLimiter, TokenAuthority
from api.status import ServiceStatus
from calltracking.calls.hub import CallEventHub
from calltracking.clicktocall.service import ClickToCallService
from calltracking.config import Settings
from calltracking.crm.lookup_repository import LookupReader
from calltracking.metrics import ApiMetrics
from calltracking.tracking.service import NumberPool
from recordings.service import RecordingWorker

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
AUTHORITY = web.AppKey("authority", TokenAuthority)
METRICS = web.AppKey("metrics", ApiMetrics)
STATUS = web.AppKey("status", ServiceStatus)
CLICK_TO_CALL = web.AppKey("click_to_call", ClickToCallService)
HUB = web.AppKey("hub", CallEventHub)
LOOKUP = web.AppKey("lookup", LookupReader)
RECORDING_WORKER = web.AppKey("recording_worker", RecordingWorker)
NUMBER_POOL = web.AppKey("number_pool", NumberPool)
# Number requests per token, on top of the API's own limit (`[tracking.pool] sessions_per_minute`).
POOL_LIMITER = web.AppKey("pool_limiter", RateLimiter)
# Readiness probes still finishing after /readyz answered (a reference keeps each task alive).
PROBES = web.AppKey("readiness_probes", set)
