"""Queue figures: how the callers of each queue fared in a period. Pure: from what the database counted to
the figures a report shows.

The counting itself (which call is answered, abandoned, answered within the service level) happens once,
in the repository's SQL, on the call's stored `status`, `abandoned` and `queue_wait_seconds`. What is
left here is arithmetic: shares, averages, totals, and the 90th percentile where the database cannot
compute it (SQLite), by the same interpolation as PostgreSQL's `percentile_cont`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# A caller who hung up within this many seconds of joining a queue: no agent could have answered in time.
SHORT_ABANDON_SECONDS = 10.0
P90 = 0.9
# Seconds are shown to the millisecond: what both databases agree on, whatever their float arithmetic.
DIGITS = 3


@dataclass(frozen=True, slots=True)
class QueueTally:
    """One queue's calls in a period, as the database counted them."""

    queue: str
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    answered_within_service_level: int
    # Answered (abandoned) calls whose wait is known, and the sum of their waits.
    answered_waits: int
    answered_wait_seconds: float
    abandoned_waits: int
    abandoned_wait_seconds: float


@dataclass(frozen=True, slots=True)
class AgentTally:
    """The calls of one queue one agent (an extension) answered."""

    queue: str
    agent: str
    answered: int
    talk_seconds: float


@dataclass(frozen=True, slots=True)
class WaitPercentiles:
    """The 90th percentile of the waits of answered and of abandoned calls (None: no such call)."""

    answered: float | None = None
    abandoned: float | None = None


@dataclass(frozen=True, slots=True)
class QueuedWait:
    """One queued call's wait, for computing percentiles outside the database."""

    queue: str
    is_answered: bool
    is_abandoned: bool
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class AgentFigures:
    agent: str
    answered: int
    talk_seconds: float
    average_talk_seconds: float


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One queue (`queue` None: all of them together)."""

    queue: str | None
    offered: int
    answered: int
    abandoned: int
    # Neither answered nor abandoned: the queue gave up on the caller (timeout, empty queue, a key pressed).
    other_unanswered: int
    short_abandoned: int
    abandoned_average_wait_seconds: float | None
    abandoned_p90_wait_seconds: float | None
    answered_within_service_level: int
    # answered within the service level / offered; None when nothing was offered.
    service_level: float | None
    answered_average_wait_seconds: float | None
    answered_p90_wait_seconds: float | None
    agents: tuple[AgentFigures, ...]


@dataclass(frozen=True, slots=True)
class QueueReport:
    service_level_seconds: float
    queues: tuple[QueueFigures, ...]
    total: QueueFigures


def percentile_cont(values: Iterable[float], fraction: float) -> float | None:
    """The `fraction` percentile by linear interpolation between the closest ranks, as PostgreSQL's
    `percentile_cont` computes it: position `fraction * (n - 1)` in the sorted values. None for none."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def wait_percentiles(waits: Iterable[QueuedWait]) -> dict[str | None, WaitPercentiles]:
    """The p90 waits per queue, and for all queues together under None."""
    answered: dict[str | None, list[float]] = {}
    abandoned: dict[str | None, list[float]] = {}
    for wait in waits:
        target = answered if wait.is_answered else abandoned if wait.is_abandoned else None
        if target is not None:
            target.setdefault(wait.queue, []).append(wait.wait_seconds)
            target.setdefault(None, []).append(wait.wait_seconds)
    return {
        queue: WaitPercentiles(
            answered=percentile_cont(answered.get(queue, ()), P90),
            abandoned=percentile_cont(abandoned.get(queue, ()), P90),
        )
        for queue in answered.keys() | abandoned.keys()
    }


def queue_report(
    tallies: Sequence[QueueTally],
    agents: Sequence[AgentTally],
    percentiles: Mapping[str | None, WaitPercentiles],
    service_level_seconds: float,
) -> QueueReport:
    """Each queue's figures (by name), and the total over them; `percentiles` has the total under None."""
    by_queue: dict[str, list[AgentTally]] = {}
    for agent in agents:
        by_queue.setdefault(agent.queue, []).append(agent)
    queues = tuple(
        _figures(tally.queue, tally, by_queue.get(tally.queue, []), percentiles.get(tally.queue))
        for tally in sorted(tallies, key=lambda tally: tally.queue)
    )
    total = _figures(None, sum_tallies("", tallies), _agents_over_queues(agents), percentiles.get(None))
    return QueueReport(service_level_seconds=service_level_seconds, queues=queues, total=total)


def _figures(
    queue: str | None, tally: QueueTally, agents: Iterable[AgentTally], percentiles: WaitPercentiles | None
) -> QueueFigures:
    p90 = percentiles or WaitPercentiles()
    return QueueFigures(
        queue=queue,
        offered=tally.offered,
        answered=tally.answered,
        abandoned=tally.abandoned,
        other_unanswered=tally.offered - tally.answered - tally.abandoned,
        short_abandoned=tally.short_abandoned,
        abandoned_average_wait_seconds=_average(tally.abandoned_wait_seconds, tally.abandoned_waits),
        abandoned_p90_wait_seconds=_seconds(p90.abandoned),
        answered_within_service_level=tally.answered_within_service_level,
        service_level=(
            round(tally.answered_within_service_level / tally.offered, 4) if tally.offered else None
        ),
        answered_average_wait_seconds=_average(tally.answered_wait_seconds, tally.answered_waits),
        answered_p90_wait_seconds=_seconds(p90.answered),
        agents=tuple(
            AgentFigures(
                agent=agent.agent,
                answered=agent.answered,
                talk_seconds=round(agent.talk_seconds, DIGITS),
                average_talk_seconds=round(agent.talk_seconds / agent.answered, DIGITS),
            )
            for agent in sorted(agents, key=lambda agent: agent.agent)
            if agent.answered
        ),
    )


def sum_tallies(queue: str, tallies: Iterable[QueueTally]) -> QueueTally:
    """The tallies added up under the name `queue`: a queue's from its parts, or the total's."""
    total = QueueTally(queue, 0, 0, 0, 0, 0, 0, 0.0, 0, 0.0)
    for tally in tallies:
        total = QueueTally(
            queue=queue,
            offered=total.offered + tally.offered,
            answered=total.answered + tally.answered,
            abandoned=total.abandoned + tally.abandoned,
            short_abandoned=total.short_abandoned + tally.short_abandoned,
            answered_within_service_level=total.answered_within_service_level
            + tally.answered_within_service_level,
            answered_waits=total.answered_waits + tally.answered_waits,
            answered_wait_seconds=total.answered_wait_seconds + tally.answered_wait_seconds,
            abandoned_waits=total.abandoned_waits + tally.abandoned_waits,
            abandoned_wait_seconds=total.abandoned_wait_seconds + tally.abandoned_wait_seconds,
        )
    return total


def _agents_over_queues(agents: Iterable[AgentTally]) -> list[AgentTally]:
    summed: dict[str, AgentTally] = {}
    for agent in agents:
        seen = summed.get(agent.agent)
        summed[agent.agent] = (
            agent
            if seen is None
            else AgentTally(
                "", agent.agent, seen.answered + agent.answered, seen.talk_seconds + agent.talk_seconds
            )
        )
    return list(summed.values())


def _average(total: float, count: int) -> float | None:
    return round(total / count, DIGITS) if count else None


def _seconds(value: float | None) -> float | None:
    return round(value, DIGITS) if value is not None else None
