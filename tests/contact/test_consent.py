"""Consent per channel: outbound channels (email, push, ...) decide nothing without it."""

import numpy as np
import pytest
from decision_engine import Engine, parse_catalog

from seeds.generator import DEMO_CATALOG, generate_profiles

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def demo() -> Engine:
    return Engine(DEMO_CATALOG, seed=3, clock="simulated")


def test_the_demo_declares_email_and_push_as_needing_consent(demo):
    assert demo.consent_channels == ["email", "push"]


def test_a_web_only_customer_gets_no_email_and_every_offer_says_why(demo):
    profiles = generate_profiles(50, seed=1)
    shown_by_web = shown_by_email = 0
    for row in profiles:
        shown_by_web += len(demo.decide("web_home_hero", row, consents=["web"], now=NOW).offers)
        mail = demo.decide("email_weekly", row, consents=["web"], now=NOW, explain=True)
        assert mail.offers == []
        assert mail.reasons, "the reasons name every offer left out"
        assert set(mail.reasons.values()) == {"no consent for channel 'email'"}
        shown_by_email += len(demo.decide("email_weekly", row, consents=["web", "email"], now=NOW).offers)
    assert shown_by_web > 0, "web needs no consent"
    assert shown_by_email > 0, "with email's consent the same customers get email offers"


def test_batch_and_page_paths_hold_consent_too(demo):
    profiles = generate_profiles(200, seed=2)
    consents = np.zeros((len(profiles), len(demo.channels)), dtype=bool)
    consents[:, demo.channels.index("web")] = True
    consents[::2, demo.channels.index("email")] = True
    batch = demo.decide_batch("email_weekly", profiles, consents=consents, now=NOW)
    filled = (batch.offers >= 0).any(axis=1)
    assert filled[::2].any(), "consented rows get email offers"
    assert not filled[1::2].any(), "rows without email consent get none"
    without = demo.decide_batch("push_daily", profiles, now=NOW)
    assert (without.offers == -1).all(), "no consents given: nothing on push"


def test_a_channel_can_declare_its_own_consent_rule():
    catalog = parse_catalog(
        """
version: 1
features: [{name: age, type: int}]
channels: [{id: email, consent: not_required}, {id: kiosk, consent: required}]
placements:
  - {id: mail, channel: email, slots: 1}
  - {id: screen, channel: kiosk, slots: 1}
offers:
  - {id: a, placements: [mail, screen]}
""",
        "inline.yaml",
    )
    engine = Engine(catalog, clock="simulated")
    assert engine.consent_channels == ["kiosk"]
    assert engine.decide("mail", {"age": 30}, now=NOW).offer_ids == ["a"]
    assert engine.decide("screen", {"age": 30}, now=NOW).offer_ids == []
    assert engine.decide("screen", {"age": 30}, consents=["kiosk"], now=NOW).offer_ids == ["a"]


def test_a_misspelt_consent_rule_points_at_its_line():
    from decision_engine import CatalogError

    with pytest.raises(CatalogError) as err:
        parse_catalog(
            "version: 1\nchannels:\n  - web\n  - {id: email, consent: yes_please}\n"
            "placements: [{id: p, channel: web, slots: 1}]\n",
            "c.yaml",
        )
    assert "c.yaml:4:" in str(err.value) and "consent" in str(err.value)
