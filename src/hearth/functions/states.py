"""A function version's two state machines, with the only transitions allowed (as AWS documents them,
plus Hearth's decision that a failed update fails the function).

`State`::

    (created or published) ──► PENDING ──► ACTIVE ◄──► INACTIVE
                                  │          │ ▲
                                  ▼          ▼ │
                                FAILED ◄─────┘ │      a failed update, or code lost after a crash
                                  └────────────┘      a successful update of a failed function

`LastUpdateStatus` (None until the first configuration has settled)::

    None ──► SUCCESSFUL | FAILED ──► IN_PROGRESS ──► SUCCESSFUL | FAILED

It owns the names and the tables; `check` is called wherever a version's configuration is replaced
(`hearth.functions.service`), so a change that skips a step is a bug caught where it is made. It never
stores anything.
"""

from __future__ import annotations

import enum

from hearth.functions.config import FunctionConfig


class State(enum.StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"


class UpdateStatus(enum.StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"


STATE_TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.ACTIVE, State.FAILED}),
    State.ACTIVE: frozenset({State.INACTIVE, State.FAILED}),
    State.INACTIVE: frozenset({State.PENDING, State.ACTIVE, State.FAILED}),
    State.FAILED: frozenset({State.ACTIVE}),
}
UPDATE_TRANSITIONS: dict[UpdateStatus | None, frozenset[UpdateStatus]] = {
    None: frozenset({UpdateStatus.SUCCESSFUL, UpdateStatus.FAILED}),
    UpdateStatus.SUCCESSFUL: frozenset({UpdateStatus.IN_PROGRESS}),
    UpdateStatus.FAILED: frozenset({UpdateStatus.IN_PROGRESS}),
    UpdateStatus.IN_PROGRESS: frozenset({UpdateStatus.SUCCESSFUL, UpdateStatus.FAILED}),
}


class InvalidTransition(RuntimeError):
    """A version's state or update status was about to change in a way its state machine forbids."""


def check(before: FunctionConfig, after: FunctionConfig) -> FunctionConfig:
    """`after`, if going from `before` to it is allowed (staying put always is); else InvalidTransition."""
    old_state, new_state = State(before.state), State(after.state)
    if new_state is not old_state and new_state not in STATE_TRANSITIONS[old_state]:
        raise InvalidTransition(f"{after.key}:{after.version}: state {old_state} -> {new_state}")
    old_update = UpdateStatus(before.last_update_status) if before.last_update_status else None
    new_update = UpdateStatus(after.last_update_status) if after.last_update_status else None
    if new_update is not old_update and (new_update is None or new_update not in UPDATE_TRANSITIONS[old_update]):
        raise InvalidTransition(f"{after.key}:{after.version}: update status {old_update} -> {new_update}")
    return after
