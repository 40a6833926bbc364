"""Each rule of the contact policy excludes exactly what it should, with its reason."""

import numpy as np
import pytest
from decision_engine import Contact, InvalidInputError, OutcomeAlreadyReportedError

from tests.clock import DAY, NOW_SECONDS

ROW = np.array([30.0], np.float32)


def test_channel_cap_counts_messages_and_names_cap_window_and_count(make_contact_engine):
    engine = make_contact_engine()
    first = engine.decide("mail", ROW, profile_id="p", now=NOW_SECONDS)
    assert len(first.offers) == 1
    second = engine.decide("mail", ROW, profile_id="p", now=NOW_SECONDS + 60, explain=True)
    assert second.offers == []
    assert (
        second.reasons["news"] == "contact policy: channel 'email' cap: 1 contact(s) in the last 1d (max 1)"
    )
    assert len(engine.decide("hero", ROW, profile_id="p", now=NOW_SECONDS).offers) == 2, "web is not capped"
    assert len(engine.decide("mail", ROW, profile_id="q", now=NOW_SECONDS).offers) == 1, (
        "caps are per profile"
    )


def test_release_gives_the_reservation_back(make_contact_engine):
    engine = make_contact_engine()
    first = engine.decide("mail", ROW, profile_id="p", now=NOW_SECONDS)
    engine.release(first.decision_id)
    assert [c.kind for c in engine.contact_history("p")] == []
    with pytest.raises(OutcomeAlreadyReportedError, match="is settled"):
        engine.report_outcome(first.decision_id, 1.0)
    assert len(engine.decide("mail", ROW, profile_id="p", now=NOW_SECONDS + 1).offers) == 1


def test_all_channel_and_per_offer_caps(make_contact_engine):
    engine = make_contact_engine()
    history = [Contact("news", "web", NOW_SECONDS - DAY), Contact("news", "push", NOW_SECONDS - 2 * DAY)]
    d = engine.decide("hero", ROW, history=history, now=NOW_SECONDS, explain=True)
    assert "news" not in d.offer_ids
    assert d.reasons["news"] == "contact policy: per-offer cap: 2 contact(s) in the last 3d (max 2)"
    four = [Contact(f"x{i}", "push", NOW_SECONDS - i * DAY) for i in range(4)]
    d = engine.decide("hero", ROW, history=four, now=NOW_SECONDS, explain=True)
    assert d.offers == []
    assert d.reasons["news"] == "contact policy: all-channel cap: 4 contact(s) in the last 1w (max 4)"


def test_supplied_contacts_of_one_decision_count_as_one_message(make_contact_engine):
    engine = make_contact_engine()
    # Two offers shown by one decision (made on another server): one message of the four allowed.
    one_page = [Contact(f"x{i}", "push", NOW_SECONDS - DAY, decision_id=(7 << 40) + 1) for i in range(2)]
    two_more = [Contact(f"y{i}", "push", NOW_SECONDS - DAY, decision_id=0) for i in range(2)]
    assert engine.decide("hero", ROW, history=one_page + two_more, now=NOW_SECONDS).offers, "3 messages < 4"
    apart = [Contact(f"x{i}", "push", NOW_SECONDS - DAY) for i in range(2)]
    d = engine.decide("hero", ROW, history=apart + two_more, now=NOW_SECONDS, explain=True)
    assert d.offers == [] and "all-channel cap: 4 contact(s)" in d.reasons["news"]


def test_group_cap_and_group_limit(make_contact_engine):
    engine = make_contact_engine()
    history = [Contact("card", "web", NOW_SECONDS - DAY, group="cards")]
    d = engine.decide("hero", ROW, history=history, now=NOW_SECONDS, explain=True)
    assert d.reasons["card_plus"] == "contact policy: group 'cards' cap: 1 contact(s) in the last 2d (max 1)"
    for seed in range(20):
        d = make_contact_engine(seed).decide("hero", ROW, now=NOW_SECONDS)
        assert len(d.offer_ids) == 2, "both slots are filled: one card, and loan or news"
        assert sum(o.startswith("card") for o in d.offer_ids) <= 1


def test_cooldowns_after_conversion_and_dismissal(make_contact_engine):
    engine = make_contact_engine()
    history = [
        Contact("loan", "web", NOW_SECONDS - 10 * DAY, "converted"),
        Contact("news", "web", NOW_SECONDS - DAY, "dismissed"),
    ]
    d = engine.decide("mail", ROW, history=history, now=NOW_SECONDS, explain=True)
    assert d.offers == []
    assert d.reasons["loan"] == "contact policy: cooldown after conversion: 10d ago, cooldown 2w"
    assert d.reasons["news"] == "contact policy: cooldown after dismissal: 1d ago, cooldown 3d"
    d = engine.decide("mail", ROW, history=history, now=NOW_SECONDS + 2.5 * DAY)
    assert d.offer_ids == ["news"], "the dismissal cooldown ended, the conversion one did not"


def test_reported_outcomes_start_cooldowns(make_contact_engine):
    engine = make_contact_engine()
    d = engine.decide("mail", ROW, profile_id="p", now=NOW_SECONDS)
    engine.report_outcome(d.decision_id, 1.0)
    kinds = [c.kind for c in engine.contact_history("p")]
    assert kinds == ["shown", "converted"]
    later = engine.decide("mail", ROW, profile_id="p", now=NOW_SECONDS + 2 * DAY, explain=True)
    assert later.reasons[d.offer_ids[0]].startswith("contact policy: cooldown after conversion")


def test_purchased_products_are_suppressed(make_contact_engine):
    d = make_contact_engine().decide("hero", ROW, purchases=["card"], now=NOW_SECONDS, explain=True)
    assert "card" not in d.offer_ids
    assert d.reasons["card"] == "contact policy: already bought product 'card'"


def test_a_page_never_shows_an_offer_twice(make_contact_engine):
    engine = make_contact_engine()
    for i in range(100):
        page = engine.decide_page(
            ["hero", "side", "mail"], ROW, profile_id=f"p{i}", now=NOW_SECONDS, explain=True
        )
        shown = [o for d in page for o in d.offer_ids]
        # hero fills both slots, side takes the one offer left (one card per page), mail none
        assert len(page[0].offer_ids) == 2 and len(shown) == 3, [d.offer_ids for d in page]
        assert len(shown) == len(set(shown)), shown
        assert sum(o.startswith("card") for o in shown) == 1
        for offer in page[0].offer_ids:
            assert page[1].reasons[offer] == "already chosen for placement 'hero' on this page"


def test_budget_holds_and_shows_in_the_reason(make_contact_engine):
    engine = make_contact_engine(budget=3)
    shown = sum("loan" in engine.decide("mail", ROW, now=NOW_SECONDS).offer_ids for _ in range(200))
    assert shown == 3
    assert engine.budget_usage("loan", now=NOW_SECONDS) == (3, 3)
    d = engine.decide("mail", ROW, now=NOW_SECONDS, explain=True)
    assert d.reasons["loan"] == "contact policy: budget: 3 used of 3 allowed so far"


def test_bad_history_is_rejected(make_contact_engine):
    with pytest.raises(InvalidInputError, match="contact kind must be shown, converted or dismissed"):
        make_contact_engine().decide("hero", ROW, history=[Contact("x", "web", NOW_SECONDS, "clicked")])  # type: ignore[arg-type]
