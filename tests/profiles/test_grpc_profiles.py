"""ProfileService on a real server (127.0.0.1, port 0): upserts, the upsert stream, events,
GetProfile, DeleteProfile, Decide by id; bad rows are per-row errors and the server keeps
serving; the load command over gRPC."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from decision_engine import Engine, LoadedCatalog, _core
from decision_engine.cli import main
from decision_engine.server import Tokens, create_server
from decision_engine.server.server import DecisionServer
from decision_engine.v1 import decision_pb2 as pb
from decision_engine.v1 import decision_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.profiles.conftest import T0, at
from tests.profiles.test_load_cli import write_profiles

TIMEOUT = 10


@dataclass
class Served:
    server: DecisionServer
    channel: grpc.Channel
    profiles: decision_pb2_grpc.ProfileServiceStub
    decisions: decision_pb2_grpc.DecisionServiceStub
    address: str


@pytest.fixture
def serve(profile_catalog: LoadedCatalog) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(**options: object) -> Served:
        engine = Engine(profile_catalog, seed=7, clock="simulated")
        server, port = create_server("127.0.0.1:0", engine, **options)  # type: ignore[arg-type]
        server.start()
        address = f"127.0.0.1:{port}"
        channel = grpc.insecure_channel(address)
        served = Served(
            server,
            channel,
            decision_pb2_grpc.ProfileServiceStub(channel),
            decision_pb2_grpc.DecisionServiceStub(channel),
            address,
        )
        started.append(served)
        return served

    yield start
    for served in started:
        served.channel.close()
        served.server.stop(None).wait(5)


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve()


def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def upsert(profile_id: str, **features: object) -> pb.ProfileUpsert:
    message = pb.ProfileUpsert(id=profile_id)
    for name, value in features.items():
        if isinstance(value, bool):
            message.features[name].flag = value
        elif isinstance(value, str):
            message.features[name].category = value
        else:
            message.features[name].number = float(value)  # type: ignore[arg-type]
    return message


def cart_add(event_id: str, profile_id: str, days: float, value: float = 5.0) -> pb.Event:
    return pb.Event(
        id=event_id,
        profile_id=profile_id,
        type="cart_add",
        time=timestamp(at(days)),
        properties={"value": pb.FeatureValue(number=value)},
    )


def eligible(decision: pb.Decision, offer_id: str) -> bool:
    """Whether `offer_id` passed its rule: chosen, or only outranked (explain)."""
    chosen = offer_id in [o.offer_id for o in decision.offers]
    return chosen or decision.reasons[offer_id].startswith(("outranked", "exclusion group"))


def get(served: Served, profile_id: str, days: float = 0) -> pb.StoredProfile:
    request = pb.GetProfileRequest(id=profile_id, now=timestamp(at(days)))
    response: pb.StoredProfile = served.profiles.GetProfile(request, timeout=TIMEOUT)
    return response


def test_upsert_get_delete(served: Served) -> None:
    request = pb.UpsertProfilesRequest(
        profiles=[upsert("ann", age=41, vip=True, segment="gold"), upsert("bob", spend=3.5)]
    )
    request.profiles[0].consents.append("email")
    response = served.profiles.UpsertProfiles(request, timeout=TIMEOUT)
    assert (response.accepted, response.refused, list(response.rejected)) == (2, 0, [])
    ann = get(served, "ann")
    assert ann.id == "ann"
    assert ann.features["age"].number == 41
    assert ann.features["vip"].flag is True
    assert ann.features["segment"].category == "gold"
    assert ann.features["days_since_purchase"].number == 9999
    assert list(ann.consents) == ["email"]
    assert served.server.engine.profile_count == 2

    deleted = served.profiles.DeleteProfile(pb.DeleteProfileRequest(id="ann"), timeout=TIMEOUT)
    assert deleted.found is True
    with pytest.raises(grpc.RpcError) as info:
        get(served, "ann")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    again = served.profiles.DeleteProfile(pb.DeleteProfileRequest(id="ann"), timeout=TIMEOUT)
    assert again.found is False


def test_upsert_stream_sums_its_messages(served: Served) -> None:
    messages = [
        pb.UpsertProfilesRequest(profiles=[upsert("a0", age=20), upsert("", age=1), upsert("a2", age=22)]),
        pb.UpsertProfilesRequest(profiles=[upsert("a3", segment="platinum"), upsert("a4", spend=math.nan)]),
        pb.UpsertProfilesRequest(profiles=[upsert("a5", nope=1), upsert("a6", age=26)]),
    ]
    response = served.profiles.UpsertProfileStream(iter(messages), timeout=TIMEOUT)
    assert (response.accepted, response.refused) == (3, 4)
    assert [(r.index, r.id) for r in response.rejected] == [(1, ""), (3, "a3"), (4, "a4"), (5, "a5")]
    assert "platinum" in response.rejected[1].message
    assert "nope" in response.rejected[3].message
    assert served.server.engine.profile_count == 3
    assert get(served, "a6").features["age"].number == 26


def test_track_events_stream(served: Served) -> None:
    served.profiles.UpsertProfiles(
        pb.UpsertProfilesRequest(profiles=[upsert("ann", age=30)]), timeout=TIMEOUT
    )
    first = pb.TrackEventsRequest(events=[cart_add("e1", "ann", 0), cart_add("e2", "ann", 1)])
    second = pb.TrackEventsRequest(
        events=[cart_add("e1", "ann", 0), pb.Event(id="e3", profile_id="ann", type="cart_add")]
    )
    response = served.profiles.TrackEvents(iter([first, second]), timeout=TIMEOUT)
    assert (response.accepted, response.duplicates, response.refused) == (2, 1, 1)
    assert [(r.index, r.id) for r in response.rejected] == [(3, "e3")]
    assert "time" in response.rejected[0].message
    assert get(served, "ann", days=1.5).features["cart_adds_7d"].number == 2


def test_decide_by_id_over_grpc(served: Served) -> None:
    served.profiles.UpsertProfiles(
        pb.UpsertProfilesRequest(profiles=[upsert("ann", age=41, segment="gold")]), timeout=TIMEOUT
    )
    request = pb.DecideRequest(
        placements=["hero"], profile=pb.Profile(id="ann"), now=timestamp(T0), explain=True
    )
    response = served.decisions.Decide(request, timeout=TIMEOUT)
    (decision,) = response.decisions
    assert len(decision.offers) == 1
    assert eligible(decision, "gold_offer")  # through the stored segment
    assert served.server.engine.contact_history("ann")  # the stored profile's history took the contact

    unknown = pb.DecideRequest(placements=["hero"], profile=pb.Profile(id="nobody"), now=timestamp(T0))
    with pytest.raises(grpc.RpcError) as info:
        served.decisions.Decide(unknown, timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_events_in_the_decide_request_are_applied_first(served: Served) -> None:
    served.profiles.UpsertProfiles(
        pb.UpsertProfilesRequest(profiles=[upsert("ann", age=30)]), timeout=TIMEOUT
    )
    request = pb.DecideRequest(
        placements=["hero"],
        profile=pb.Profile(id="ann"),
        now=timestamp(at(1)),
        events=[cart_add("x1", "ann", 0.5), cart_add("x2", "ann", 0.6)],
        upsert=upsert("ann", segment="basic"),
        explain=True,
    )
    before = pb.DecideRequest(
        placements=["hero"], profile=pb.Profile(id="ann"), now=timestamp(at(1)), explain=True
    )
    (without,) = served.decisions.Decide(before, timeout=TIMEOUT).decisions
    assert not eligible(without, "cart_nudge")
    (decision,) = served.decisions.Decide(request, timeout=TIMEOUT).decisions
    assert eligible(decision, "cart_nudge")  # the two cart adds of the request counted
    assert get(served, "ann", days=1).features["cart_adds_7d"].number == 2


def test_bad_writes_and_the_server_keeps_serving(served: Served) -> None:
    bad = served.profiles.UpsertProfiles(
        pb.UpsertProfilesRequest(profiles=[upsert("u1", age=math.inf), upsert("x" * 10_000, age=3)]),
        timeout=TIMEOUT,
    )
    assert (bad.accepted, bad.refused, len(bad.rejected)) == (0, 2, 2)
    malformed = served.channel.unary_unary("/decision_engine.v1.ProfileService/UpsertProfiles")
    with pytest.raises(grpc.RpcError) as info:
        malformed(b"\xff\xff\xff", timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stream = served.channel.stream_unary("/decision_engine.v1.ProfileService/TrackEvents")
    with pytest.raises(grpc.RpcError) as info:
        stream(
            iter([pb.TrackEventsRequest(events=[cart_add("e1", "ann", 0)]).SerializeToString(), b"\xff"]),
            timeout=TIMEOUT,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "TrackEventsRequest #1" in (info.value.details() or "")
    assert "1 rows" in (info.value.details() or "")  # what the message before it wrote
    # still serving
    ok = served.profiles.UpsertProfiles(
        pb.UpsertProfilesRequest(profiles=[upsert("ok", age=3)]), timeout=TIMEOUT
    )
    assert ok.accepted == 1
    assert served.decisions.Ping(pb.PingRequest(), timeout=TIMEOUT) == pb.PingResponse()


def test_profile_service_needs_the_decision_token(serve: Callable[..., Served]) -> None:
    served = serve(tokens=Tokens(decision="secret"))
    request = pb.UpsertProfilesRequest(profiles=[upsert("ann", age=3)])
    with pytest.raises(grpc.RpcError) as info:
        served.profiles.UpsertProfiles(request, timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    response = served.profiles.UpsertProfiles(
        request, metadata=[("authorization", "Bearer secret")], timeout=TIMEOUT
    )
    assert response.accepted == 1


def test_load_command_over_grpc(serve: Callable[..., Served], tmp_path: Path) -> None:
    served = serve(tokens=Tokens(decision="secret"))
    profiles = write_profiles(tmp_path / "p.parquet", 23, bad=(4,))
    args = ["load", str(profiles), "--server", served.address, "--id-column", "customer", "--batch-size", "6"]
    result = CliRunner(env={"DECISION_ENGINE_DECISION_TOKEN": "secret"}).invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "23 rows: 22 accepted, 1 rejected" in result.output
    assert "row 4 ('c4')" in result.output
    assert served.server.engine.profile_count == 22
    c7 = served.server.engine.profile("c7", now=T0)
    assert c7 is not None and c7["features"]["segment"] == "gold"
    refused = CliRunner().invoke(main, args)  # no token
    assert refused.exit_code == 1
    assert "UNAUTHENTICATED" in refused.output


def test_upsert_stream_lists_the_first_rejections_and_counts_all(served: Served) -> None:
    listed = int(_core.LIMITS["max_listed_rejections"])
    per_message = listed * 3 // 5 + 1  # two messages reject more than can be listed
    messages = [
        pb.UpsertProfilesRequest(
            profiles=[upsert(f"m{m}r{i}", segment="platinum") for i in range(per_message)]
        )
        for m in range(2)
    ]
    response = served.profiles.UpsertProfileStream(iter(messages), timeout=TIMEOUT)
    assert (response.accepted, response.refused) == (0, 2 * per_message)
    assert len(response.rejected) == listed
    assert [r.index for r in response.rejected] == list(range(listed))
    assert response.rejected[per_message].id == "m1r0"  # the second message's rows follow the first's
    assert served.server.engine.profile_count == 0
