"""Names kept for labelling: reloaded after their time, cleared by a rename in the process."""

from __future__ import annotations

import uuid

from analytics_app.bootstrap.application import Application
from analytics_core.registry import Names, model_entry
from analytics_core.usecases.registry import NamesCache

ORG = uuid.UUID(int=5)


def test_names_are_kept_for_their_time_then_read_again() -> None:
    """Within the time the kept names answer; after it, the registry is read again."""
    clock = [100.0]
    loads: list[int] = []

    def load() -> Names:
        loads.append(1)
        return Names({uuid.UUID(int=1): f"m{len(loads)}"}, {})

    cache = NamesCache(ttl=5.0, now=lambda: clock[0])
    assert cache.get(ORG, load).models[uuid.UUID(int=1)] == "m1"
    clock[0] += 4.9
    assert cache.get(ORG, load).models[uuid.UUID(int=1)] == "m1"
    clock[0] += 0.2
    assert cache.get(ORG, load).models[uuid.UUID(int=1)] == "m2"
    cache.clear()
    assert cache.get(ORG, load).models[uuid.UUID(int=1)] == "m3"


def test_a_rename_in_this_process_labels_the_next_read() -> None:
    """register_model and put_client clear the kept names: the next labels are the new ones."""
    with Application() as app:
        uc = app.use_cases
        model = uuid.uuid4()
        uc.register_model(model_entry(model, {"name": "first"}))
        assert uc.names(ORG).model(model) == "first"
        uc.register_model(model_entry(model, {"name": "second"}))
        assert uc.names(ORG).model(model) == "second"
