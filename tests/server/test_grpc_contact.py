"""Contact policy over the wire: whole-page Decide, profile ids, request history, purchases,
dismissals, Release, and profile ids in DecideBatch."""

import pytest
from decision_engine import Engine, parse_catalog
from decision_engine.v1 import decision_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

DAY = 86_400
NOW = 1_000 * DAY

CATALOG = """
version: 1
features:
  - {name: age, type: int}
channels: [web, email, push]
placements:
  - {id: hero, channel: web, slots: 2}
  - {id: side, channel: web, slots: 2}
  - {id: mail, channel: email, slots: 1}
offers:
  - {id: card, placements: [hero, side], group: cards, product: card, value: 5}
  - {id: card_plus, placements: [hero, side], group: cards, value: 4}
  - {id: loan, placements: [hero, side, mail], value: 3}
  - {id: news, placements: [hero, side, mail]}
contact_policy:
  caps:
    - {scope: channel, channel: email, max: 1, window: 1d}
    - {scope: group, group: cards, max: 1, window: 2d}
  cooldown_after_conversion: 14d
  cooldown_after_dismissal: 3d
  suppress_purchased: true
  max_per_group: 1
"""


@pytest.fixture
def running(start_server):
    return start_server(Engine(parse_catalog(CATALOG, "contact.yaml"), seed=1, clock="simulated"))


def at(seconds):
    return Timestamp(seconds=int(seconds))


def decide(running, placements, when=NOW, **profile):
    request = pb.DecideRequest(
        profile=pb.Profile(features=[30], **profile), placements=placements, explain=True, now=at(when)
    )
    return running.decisions.Decide(request).decisions


def test_a_page_never_shows_an_offer_twice(running):
    hero, side = decide(running, ["hero", "side"])
    shown = [o.offer_id for o in hero.offers] + [o.offer_id for o in side.offers]
    assert len(shown) == len(set(shown)) == 4 - 1  # one of the two card offers: group limit
    assert any("already chosen for placement 'hero' on this page" in r for r in side.reasons.values())


def test_profile_id_applies_caps_and_release_gives_them_back(running):
    first = decide(running, ["mail"], id="p1", consents=["email"])[0]
    assert len(first.offers) == 1
    second = decide(running, ["mail"], NOW + 10, id="p1", consents=["email"])[0]
    assert not second.offers
    capped = "contact policy: channel 'email' cap: 1 contact(s) in the last 1d (max 1)"
    assert second.reasons == {"loan": capped, "news": capped}
    running.decisions.Release(pb.ReleaseRequest(decision_id=first.decision_id))
    assert decide(running, ["mail"], NOW + 20, id="p1", consents=["email"])[0].offers
    assert decide(running, ["mail"], NOW + 30, id="someone else", consents=["email"])[0].offers


def test_purchases_and_history_from_the_request(running):
    bought = decide(running, ["hero"], purchases=["card"])[0]
    assert bought.reasons["card"] == "contact policy: already bought product 'card'"
    converted = pb.Contact(offer_id="news", channel="web", time=at(NOW - DAY), kind=pb.CONTACT_KIND_CONVERTED)
    hero = decide(running, ["hero"], history=[converted])[0]
    assert hero.reasons["news"] == "contact policy: cooldown after conversion: 1d ago, cooldown 2w"


def test_dismissal_starts_a_cooldown(running):
    hero = decide(running, ["hero"], id="p3")[0]
    card = next(o.offer_id for o in hero.offers if o.offer_id.startswith("card"))
    request = pb.ReportOutcomeRequest(decision_id=hero.decision_id, offer_id=card, reward=0.0, dismissed=True)
    running.decisions.ReportOutcome(request)
    later = decide(running, ["hero"], NOW + 5, id="p3")[0]
    assert later.reasons[card] == "contact policy: cooldown after dismissal: 5s ago, cooldown 3d"


def test_decide_batch_with_profile_ids(running):
    request = pb.DecideBatchRequest(
        placement="mail",
        features=[30, 30],
        rows=2,
        consent_channels=["email"],
        consents=[True, True],
        profile_ids=["q", "q"],
        now=at(NOW),
    )
    response = running.decisions.DecideBatch(request)
    assert list(response.offers) == [0, -1]  # the same profile's second row hits the email cap
    assert len(response.offer_ids) == 1
