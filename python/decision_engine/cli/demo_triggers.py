"""The demo's triggered campaign beside the inbound placements: some web and app visits start
an application (an ``application_start`` event with an ``application_id`` and an ``amount``),
some of those customers submit it within a while (``application_submit``, which cancels the
catalog's trigger if it comes before the delay), and as simulated time passes a scheduler
fires the due instances (`Engine.fire_due`) and a sender polls the trigger's channel, "sends"
and acknowledges; a few sends fail the first time and come again after the visibility timeout.

The campaign draws from its own random stream, so the inbound arrivals, clicks and the policies
compared on them are drawn as without it; its decisions are never scored nor reported (the
response model knows clicks on inbound placements only). They share the engine with the
inbound decisions: the contact policy (with ``--holdout``; without it the demo leaves caps
out) and the stream of decision ids.

Every rule (the delay, cancellation, quiet hours, re-entry, the contact policy) is the core's;
the summary counts what `Engine.trigger_history` says became of every instance.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from decision_engine.cli.demo_customers import VISIT_CHANNELS, customer_id
from decision_engine.engine import Engine

START, SUBMIT = "application_start", "application_submit"
START_SHARE = 0.03  # of web and app visits that start an application
SUBMIT_SHARE = 0.5  # of applications submitted, uniformly within twice the trigger's delay
TICK = 300.0  # the scheduler fires and the sender polls every 5 simulated minutes
VISIBILITY = 600.0  # a delivery not acknowledged comes again 10 minutes later
FLAKY_SHARE = 0.05  # first sends that fail (not acknowledged): delivered again
AFTER = 2 * 86_400.0  # at most this long after the last arrival for the instances to end
# What starts no instance, and the ends of one, in the summary's order.
REFUSALS = ("filtered", "reentry", "max_live")
ENDINGS = ("cancelled", "delivered", "capped", "no_offer", "expired", "discarded_quiet_hours", "refused")
WORDS = {
    "cancelled": "cancelled by a submitted application",
    "no_offer": "no offer",
    "discarded_quiet_hours": "discarded in quiet hours",
    "reentry": "refused re-entry",
    "max_live": "over max_live",
}


@dataclass
class TriggeredCampaign:
    """The application starts and submits the simulated customers send, the scheduler and the
    sender; `summary` counts the outcomes."""

    engine: Engine
    trigger: str
    delay: float
    channel: str
    origin: float  # the simulation's start: the scheduler ticks at origin + k x TICK
    rng: np.random.Generator
    starts: dict[str, float] = field(default_factory=dict)  # application id -> start time
    customers: set[int] = field(default_factory=set)
    submits: list[tuple[float, str, str]] = field(default_factory=list)  # (time, id, profile)
    ticks: int = 0
    sent: int = 0  # deliveries polled, redeliveries included
    redelivered: int = 0
    last: float = 0.0  # the last tick

    @classmethod
    def for_engine(cls, engine: Engine, origin: float, seed: int) -> TriggeredCampaign | None:
        """The campaign of the catalog's first trigger on `START` events (None without one)."""
        trigger = next((t for t in engine.catalog.model.triggers or () if t.event == START), None)
        if trigger is None:
            return None
        channel = engine.placements[trigger.placement][0]
        rng = np.random.default_rng([seed, 0x7219])
        return cls(engine, trigger.id, float(trigger.delay), channel, origin, rng, last=origin)

    def arrive(self, customer: int, channel: str, now: float, arrival: int) -> None:
        """Time passes to `now`; a web or app arrival may start an application."""
        self.advance(now)
        if channel not in VISIT_CHANNELS or self.rng.random() >= START_SHARE:
            return
        application, profile = f"application-{arrival}", customer_id(customer)
        amount = round(float(self.rng.lognormal(math.log(5_000.0), 1.2)))
        self._track(START, application, profile, now, amount=float(amount))
        self.starts[application] = now
        self.customers.add(customer)
        if self.rng.random() < SUBMIT_SHARE:
            at = now + float(self.rng.uniform(0.0, 2 * self.delay))
            heapq.heappush(self.submits, (at, application, profile))

    def advance(self, now: float) -> None:
        """Every tick up to `now`: the submits before it, then fire, poll, send and ack."""
        while self.last + TICK <= now:
            self.last += TICK
            self._submits_until(self.last)
            self._tick(self.last)
        self._submits_until(now)

    def finish(self, end: float) -> None:
        """Time runs on after the last arrival until every instance and delivery has ended
        (at most `AFTER` more)."""
        while (self.engine.pending_timers or self.engine.pending_deliveries or self.submits) and (
            self.last < end + AFTER
        ):
            self.advance(self.last + TICK)

    def _submits_until(self, now: float) -> None:
        while self.submits and self.submits[0][0] <= now:
            at, application, profile = heapq.heappop(self.submits)
            self._track(SUBMIT, application, profile, at)

    def _track(self, kind: str, application: str, profile: str, at: float, **properties: object) -> None:
        event = {
            "id": f"{kind}-{application}",
            "profile_id": profile,
            "type": kind,
            "time": at,
            "properties": {"application_id": application, **properties},
        }
        report = self.engine.track([event])
        if report.accepted != 1:
            raise RuntimeError(f"{kind} event for {profile} rejected: {report.rejected}")

    def _tick(self, now: float) -> None:
        self.ticks += 1
        self.engine.fire_due(now)
        while deliveries := self.engine.poll_deliveries(self.channel, visibility=VISIBILITY, now=now):
            self.sent += len(deliveries)
            self.redelivered += sum(d["attempt"] > 1 for d in deliveries)
            sent = [
                d["decision_id"] for d in deliveries if d["attempt"] > 1 or self.rng.random() >= FLAKY_SHARE
            ]
            self.engine.ack_deliveries(sent)

    def outcomes(self) -> Counter[str]:
        """Every outcome of the trigger in the customers' histories, and ``held``: instances
        that ended after the first tick at or after their due time (quiet hours held them)."""
        counts: Counter[str] = Counter()
        for customer in sorted(self.customers):
            for entry in self.engine.trigger_history(customer_id(customer)):
                if entry["trigger"] != self.trigger:
                    continue
                counts[entry["outcome"]] += 1
                start = self.starts.get(entry["key"])
                if entry["outcome"] in ENDINGS and entry["outcome"] != "cancelled" and start is not None:
                    due = self.origin + math.ceil((start + self.delay - self.origin) / TICK) * TICK
                    counts["held"] += entry["time"] > due + 1e-6
        return counts

    def summary(self) -> str:
        counts = self.outcomes()
        started = sum(counts[o] for o in ENDINGS) + self.engine.pending_timers
        parts = [
            f"{len(self.starts):,} applications started",
            f"{started:,} started the trigger",
            f"{counts['cancelled']:,} {WORDS['cancelled']}",
            f"{counts['held']:,} held by quiet hours",
            f"{counts['delivered']:,} delivered ({counts['acknowledged']:,} acknowledged, "
            f"{self.redelivered:,} sent again after no acknowledgement)",
            f"{counts['capped']:,} capped",
            f"{counts['no_offer']:,} no offer",
        ]
        shown = {"cancelled", "delivered", "acknowledged", "capped", "no_offer", "held"}
        parts += [f"{n:,} {WORDS.get(o, o)}" for o, n in sorted(counts.items()) if o not in shown]
        return f"triggered campaign {self.trigger}: " + " | ".join(parts)
