"""The function state machines: the transitions the service makes are allowed, others are refused."""

from __future__ import annotations

import pytest

from hearth.functions.config import FunctionConfig
from hearth.functions.states import STATE_TRANSITIONS, InvalidTransition, State, UpdateStatus, check


def cfg(state: str, update: str | None) -> FunctionConfig:
    return FunctionConfig(account_id="000000000000", region="us-east-1", name="f", runtime="python3.11",
                          role="arn:aws:iam::000000000000:role/r", handler="app.handler", code_sha256="0" * 64,
                          code_size=1, revision_id="r", last_modified="", state=state, last_update_status=update)


@pytest.mark.parametrize(("before", "after"), [
    (("Pending", None), ("Active", "Successful")),  # created
    (("Pending", None), ("Failed", "Failed")),  # code or snapshot INIT failed
    (("Active", "Successful"), ("Active", "InProgress")),  # an update begins
    (("Active", "InProgress"), ("Active", "Successful")),
    (("Active", "InProgress"), ("Failed", "Failed")),  # Hearth's decision: a failed update fails it
    (("Failed", "Failed"), ("Failed", "InProgress")),  # a failed function may be updated
    (("Failed", "InProgress"), ("Active", "Successful")),
    (("Active", "Successful"), ("Failed", "Successful")),  # code lost after a crash
])
def test_the_transitions_the_service_makes_are_allowed(before: tuple[str, str | None],
                                                       after: tuple[str, str | None]) -> None:
    check(cfg(*before), cfg(*after))


@pytest.mark.parametrize(("before", "after"), [
    (("Active", "Successful"), ("Pending", "Successful")),
    (("Failed", "Failed"), ("Inactive", "Failed")),
    (("Active", "Successful"), ("Active", "Failed")),  # an update that never began cannot fail
    (("Active", "InProgress"), ("Active", None)),
])
def test_other_transitions_are_refused(before: tuple[str, str | None], after: tuple[str, str | None]) -> None:
    with pytest.raises(InvalidTransition):
        check(cfg(*before), cfg(*after))


def test_every_state_has_its_row() -> None:
    assert set(STATE_TRANSITIONS) == set(State)
    assert UpdateStatus("InProgress") is UpdateStatus.IN_PROGRESS
