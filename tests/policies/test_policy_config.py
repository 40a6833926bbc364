"""Policy configuration owned by the core: the catalog models hold the shape, the core fills
in every default and checks every range, and both layers agree on every policy type."""

import json

import pytest
from decision_engine import CatalogError, _core
from decision_engine.catalog.policies import POLICY_TYPES, fill_policy
from decision_engine.catalog.schema import Placement
from pydantic import BaseModel

from tests.policies.test_engine_policies import catalog


def given(policy: BaseModel) -> dict[str, object]:
    """The parameters a policy model holds (those left out are None)."""
    return policy.model_dump(mode="json", exclude_none=True)


def test_both_layers_know_the_same_policy_types() -> None:
    assert sorted(POLICY_TYPES) == sorted(_core.policy_types())


@pytest.mark.parametrize("kind", _core.policy_types())
def test_every_policy_type_round_trips_through_both_layers(kind: str) -> None:
    model = POLICY_TYPES[kind].model_validate({"type": kind})
    filled = fill_policy(model)
    dumped = given(filled)
    # the core filled in every parameter of the type, and the Python model kept each one
    assert dumped == json.loads(_core.fill_policy(json.dumps({"type": kind})))
    assert dumped["discount"] == 1.0
    parameters = set(dumped) - {"type", "discount"}
    assert parameters, f"{kind} has parameters of its own"
    assert all(dumped[p] is not None for p in parameters)
    # filling is idempotent: a filled policy goes through both layers unchanged
    assert given(fill_policy(POLICY_TYPES[kind].model_validate(dumped))) == dumped
    # and an explicit value survives the trip
    name = sorted(parameters)[0]
    changed = {**dumped, name: dumped[name] * 0.5 if dumped[name] else 0.5}
    assert given(fill_policy(POLICY_TYPES[kind].model_validate(changed))) == changed


def test_a_placement_without_a_policy_gets_the_cores_thompson_defaults() -> None:
    placement = Placement.model_validate({"id": "p", "channel": "web"})
    assert given(placement.policy) == json.loads(_core.fill_policy('{"type": "thompson"}'))


def test_the_core_names_the_parameter_it_refuses() -> None:
    with pytest.raises(ValueError, match="0 <= epsilon <= 1, got 2") as refused:
        _core.fill_policy('{"type": "epsilon_greedy", "epsilon": 2}')
    assert refused.value.args[1] == "epsilon"
    with pytest.raises(ValueError) as shape:
        _core.fill_policy('{"type": "epsilon_greedy", "epsilon": "lots"}')
    assert shape.value.args[1] is None


def test_a_refused_parameter_is_reported_at_its_own_line() -> None:
    with pytest.raises(CatalogError) as refused:
        catalog({"type": "lin_ucb", "ridge": 0})
    (issue,) = refused.value.issues
    assert issue.where == "placement 'hero'"
    assert issue.message == "policy.ridge: lin_ucb needs ridge > 0, got 0"
    assert issue.line == 8
