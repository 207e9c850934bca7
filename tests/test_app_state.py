"""The application's state: read as plain attributes, and still a Starlette State."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import pytest
from starlette.datastructures import State

from cerberus.app import AppState, create_app
from cerberus.settings import Settings
from tests.conftest import TEST_SECRET_KEY


def test_reading_the_app_state_does_not_go_through_states_getattr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # State.__getattr__ runs only after a failed lookup built an AttributeError; the proxy
    # reads the state eleven times per call.
    settings = Settings(APP_ENV="test", DATA_DIR=tmp_path, SECRET_KEY=TEST_SECRET_KEY)
    app = create_app(settings)

    def refuse(self: State, key: Any) -> NoReturn:
        raise AssertionError(f"State.__getattr__ asked for {key!r}")

    monkeypatch.setattr(State, "__getattr__", refuse)
    assert app.state.settings is settings
    app.state.pipelines = "swapped, as the tests of the proxy do"
    assert app.state.pipelines == "swapped, as the tests of the proxy do"


def test_the_app_state_keeps_states_item_access_iteration_and_length() -> None:
    state = AppState()
    state.first = 1
    state["second"] = 2
    assert (state.second, state["first"], len(state), list(state)) == (2, 1, 2, ["first", "second"])
    del state.first
    del state["second"]
    assert (len(state), list(state)) == (0, [])
    with pytest.raises(AttributeError, match="has no attribute 'first'"):
        _ = state.first
    with pytest.raises(AttributeError, match="has no attribute 'second'"):
        _ = state.second
