"""The stores of files and stored responses (helpers/offline/stores.py): ownership, byte counting and the eviction
policy, on the store itself (tests/test_classroom_abuse.py attacks them over HTTP)."""

from __future__ import annotations

import pytest

from helpers.offline.protocol import ApiError
from helpers.offline.responses import FileRef, FileStore, ResponseStore, Stored, by_reference, with_file_data
from helpers.offline.stores import Budget, OwnedStore, file_budget, response_budget


def blob(n: int, fill: bytes = b"x") -> bytes:
    return fill * n


def test_another_learners_id_is_an_unknown_id():
    store = OwnedStore("files", Budget(10_000, 10_000))
    store.put("f1", "ann", "A", [blob(10)])
    assert store.get("f1", "bob") is None and store.pop("f1", "bob") is None
    assert store.get("f1", "ann") == "A" and store.owned("bob") == []


def test_a_refused_item_changes_nothing():
    """The room is full of learners within their fair share: a newcomer's item larger than a fair share is refused
    and the items evicted while trying are put back, in their order."""
    store = OwnedStore("files", Budget(total=30_000, per_learner=20_000))
    for owner in ("ann", "bob", "cy"):
        for i in range(2):
            store.put(f"{owner}{i}", owner, i, [blob(4_900)])
    before = store.usage()
    with pytest.raises(ApiError) as refused:
        store.put("dee0", "dee", 0, [blob(19_000)])
    assert refused.value.status == 400 and "full" in refused.value.message
    assert store.usage() == before
    assert [store.owned(o) for o in ("ann", "bob", "cy")] == [[0, 1]] * 3


def test_a_flood_takes_from_the_flooder_first():
    store = OwnedStore("files", Budget(total=40_000, per_learner=30_000))
    store.put("ann0", "ann", "kept", [blob(9_000)])
    for i in range(50):
        store.put(f"bob{i}", "bob", i, [blob(5_000)])
    assert store.owned("ann") == ["kept"]
    assert store.usage()["bytes"] <= 40_000 and store.usage()["by_learner"]["bob"] <= 30_000
    assert store.owned("bob")[-1] == 49


def test_a_large_string_shared_by_a_learners_items_counts_once():
    store = OwnedStore("stored responses", Budget(10**7, 10**7))
    image = "data:image/png;base64," + "A" * 1_000_000
    store.put("r1", "ann", 1, [[{"url": image}]])
    one = store.usage()["bytes"]
    store.put("r2", "ann", 2, [[{"url": image}], [{"text": "and?"}]])     # a continuation shares turn 1
    assert one > 1_000_000 and store.usage()["bytes"] - one < 5_000
    store.pop("r1", "ann")
    assert store.usage()["bytes"] > 1_000_000                                # r2 still holds the image
    store.pop("r2", "ann")
    assert store.usage() == {"bytes": 0, "by_learner": {}, "items": 0}


def test_a_stored_conversation_keeps_file_ids_not_bytes():
    files = FileStore()
    ann = files.of("ann")
    file_id = ann.add(b"\x89PNG\r\n\x1a\n" + blob(50_000), "a.png", "vision")["id"]
    asked = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": FileRef(file_id)}}]}]
    sent = with_file_data(asked, ann)
    assert sent[0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    kept = by_reference(sent)
    assert kept[0]["content"][0]["image_url"]["url"] == FileRef(file_id, earlier=True)
    responses = ResponseStore().of("ann")
    responses.put("resp_1", Stored({}, [], kept))
    assert responses._store.usage()["bytes"] < 5_000
    with pytest.raises(ApiError) as other:
        with_file_data(kept, files.of("bob"))
    assert other.value.status == 404
    ann.delete(file_id)
    with pytest.raises(ApiError) as gone:
        with_file_data(kept, ann)
    assert "earlier turn" in gone.value.message


def test_the_budgets_come_from_the_environment_in_mib():
    from helpers.config import ServerSettings
    from helpers.errors import ConfigurationError

    settings = ServerSettings.from_environ({"VISION_OFFLINE_FILES_MB": "512",
                                            "VISION_OFFLINE_RESPONSES_MB_PER_LEARNER": "8"})
    assert file_budget(settings).total == 512 * 1024 * 1024
    assert response_budget(settings).per_learner == 8 * 1024 * 1024
    assert file_budget(ServerSettings.defaults()).per_learner == 64 * 1024 * 1024
    with pytest.raises(ConfigurationError, match="VISION_OFFLINE_FILES_MB_PER_LEARNER"):
        ServerSettings.from_environ({"VISION_OFFLINE_FILES_MB": "32"})        # below the 64 MiB per learner
    with pytest.raises(ConfigurationError, match="VISION_OFFLINE_RESPONSES_MB is .lots."):
        ServerSettings.from_environ({"VISION_OFFLINE_RESPONSES_MB": "lots"})
