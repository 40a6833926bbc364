"""Random sequences of decisions, outcomes, releases, time steps and threads never exceed a
cap or a budget (hypothesis), and many threads on one profile and one budget never overshoot."""

import threading
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clock import DAY, NOW_SECONDS

ROW = np.array([30.0], np.float32)
CAPS = {"all": (4, 7 * DAY), "email": (1, DAY), "offer": (2, 3 * DAY), "cards": (1, 2 * DAY)}

operation = st.one_of(
    st.tuples(st.just("decide"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("outcome"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("release"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("wait"), st.integers(1, 60), st.booleans()),
)


def assert_caps_hold(engine, profile) -> int:
    """Checks every cap at each contact shown to `profile`; returns how many contacts it saw."""
    shown = [c for c in engine.contact_history(profile) if c.kind == "shown"]

    def window(end: float, size: float) -> list:
        return [c for c in shown if c.time <= end and end - c.time < size]

    for end in (c.time for c in shown):
        assert len({(c.time, c.channel) for c in window(end, CAPS["all"][1])}) <= CAPS["all"][0]
        assert (
            len({c.time for c in window(end, CAPS["email"][1]) if c.channel == "email"}) <= CAPS["email"][0]
        )
        per_offer = Counter(c.offer_id for c in window(end, CAPS["offer"][1]))
        assert max(per_offer.values(), default=0) <= CAPS["offer"][0]
        assert sum(c.group == "cards" for c in window(end, CAPS["cards"][1])) <= CAPS["cards"][0]
    return len(shown)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=60))
def test_no_sequence_exceeds_a_cap_or_budget(make_contact_engine, ops):
    engine = make_contact_engine(budget=5)
    now, decisions, checked_contacts = NOW_SECONDS, [], 0
    for kind, arg, flag in ops:
        if kind == "decide":
            placements = ["hero", "side", "mail"] if flag else ["mail"]
            decisions += engine.decide_page(placements, ROW, profile_id=f"p{arg}", now=now)
        elif kind == "outcome" and len(decisions) > arg and decisions[-1 - arg].offers:
            d = decisions[-1 - arg]
            try:
                engine.report_outcome(d.decision_id, float(flag), d.offer_ids[0], dismissed=not flag)
            except Exception as exc:  # already settled or released: the engine refuses, as it should
                assert type(exc).__name__ in {"UnknownDecisionError", "OutcomeAlreadyReportedError"}
        elif kind == "release" and len(decisions) > arg:
            try:
                engine.release(decisions[-1 - arg].decision_id)
            except Exception as exc:
                assert type(exc).__name__ in {
                    "UnknownDecisionError",
                    "InvalidInputError",
                    "OutcomeAlreadyReportedError",
                }
        elif kind == "wait":
            now += arg * 3600.0
        for profile in ("p0", "p1", "p2"):
            checked_contacts += assert_caps_hold(engine, profile)
        used, _ = engine.budget_usage("loan", now=now)
        assert used <= 5
    if decisions:  # the caps held over contacts that happened, not over an empty history
        assert decisions[0].offers, "the first decision, for a fresh profile, shows offers"
        assert checked_contacts > 0


def test_threads_on_one_profile_and_one_budget_never_overshoot(make_contact_engine):
    engine = make_contact_engine(budget=40)
    shown_to_shared = []
    loans = []

    def work(t: int) -> None:
        mine = 0
        for i in range(250):
            mine += len(engine.decide("mail", ROW, profile_id="shared", now=NOW_SECONDS + i).offers)
            d = engine.decide("mail", ROW, profile_id=f"t{t}-{i}", now=NOW_SECONDS)
            loans.append("loan" in d.offer_ids)
        shown_to_shared.append(mine)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(shown_to_shared) == 1, "one email per day for the shared profile, across 2000 decisions"
    assert sum(loans) == 40
    assert engine.budget_usage("loan", now=NOW_SECONDS) == (40, 40)
