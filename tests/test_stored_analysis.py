"""Analyses kept on disk (helpers.offline.analysis): a restarted kernel gets the same report without OCR."""

from __future__ import annotations

import json

import pytest

from helpers.local import IMAGES_DIR
from helpers.offline import ServerSettings, analysis


@pytest.fixture()
def cache_dir(tmp_path):
    analysis.clear_cache()
    yield tmp_path
    analysis.clear_cache()


def test_a_report_read_back_from_disk_equals_the_computed_one(cache_dir, monkeypatch):
    data = (IMAGES_DIR / "product_label.png").read_bytes()
    computed = analysis.analyze(data, store=cache_dir)
    files = list(cache_dir.glob("analysis-*/*.json"))
    assert [f.stem for f in files] == [computed.sha256]
    analysis.clear_cache()                      # a new kernel: nothing in memory
    monkeypatch.setattr(analysis, "_compute", lambda *a: pytest.fail("analysed again instead of read from disk"))
    again = analysis.analyze(data, store=cache_dir)
    assert again == computed and again.text() == computed.text() and again.lines


def test_a_corrupt_or_foreign_file_is_ignored_and_replaced(cache_dir):
    data = (IMAGES_DIR / "cat.jpg").read_bytes()
    computed = analysis.analyze(data, store=cache_dir)
    path = next(cache_dir.glob("analysis-*/*.json"))
    for broken in ("{not json", json.dumps({"width": 3}), json.dumps([1, 2])):
        path.write_text(broken, encoding="utf-8")
        analysis.clear_cache()
        assert analysis.analyze(data, store=cache_dir) == computed
        assert json.loads(path.read_text(encoding="utf-8"))["sha256"] == computed.sha256


def test_off_keeps_nothing_on_disk_and_an_unwritable_folder_is_not_an_error(tmp_path):
    settings = ServerSettings.from_environ({"VISION_OFFLINE_CACHE": "off"})
    assert settings.analysis_cache is None and analysis.stored_folder(settings.analysis_cache) is None
    assert analysis.load_stored("0" * 64, settings.analysis_cache) is None
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    analysis.clear_cache()
    assert analysis.analyze((IMAGES_DIR / "cat.jpg").read_bytes(), store=blocker).width > 0


def test_the_cache_folder_comes_from_the_settings_not_from_the_environment(tmp_path, monkeypatch):
    """Issue 20: the server's configuration is read once into ServerSettings; analysis never reads os.environ."""
    settings = ServerSettings.from_environ({"VISION_OFFLINE_CACHE": str(tmp_path / "kept")})
    monkeypatch.setenv("VISION_OFFLINE_CACHE", str(tmp_path / "ignored"))
    analysis.clear_cache()
    report = analysis.analyze((IMAGES_DIR / "cat.jpg").read_bytes(), store=settings.analysis_cache)
    assert [p.stem for p in (tmp_path / "kept").glob("analysis-*/*.json")] == [report.sha256]
    assert not (tmp_path / "ignored").exists()
    default = ServerSettings.from_environ({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert default.analysis_cache == tmp_path / "xdg" / "gpt-vision-course"


def test_the_folder_changes_when_the_analysing_code_changes(tmp_path):
    assert analysis.stored_folder(tmp_path).name == f"analysis-{analysis.FINGERPRINT}"
    assert len(analysis.FINGERPRINT) == 16 and "helpers/offline/analysis.py" in analysis._SOURCES


def test_a_stored_analysis_with_wrong_types_is_recomputed_and_rewritten(cache_dir):
    """Issue 25: a stored report whose OCR text is a number was taken as is and gave a 500 for that image
    forever; the README says a damaged cache only means the analysis runs again."""
    data = (IMAGES_DIR / "product_label.png").read_bytes()
    computed = analysis.analyze(data, store=cache_dir)
    path = next(cache_dir.glob("analysis-*/*.json"))
    good = json.loads(path.read_text(encoding="utf-8"))
    assert good["lines"], "the test needs an image with text"
    damaged = [
        {**good, "lines": [{**good["lines"][0], "text": 5}]},
        {**good, "width": "wide"},
        {**good, "faces": [[1, 2, 3]]},
        {**good, "colours": {"red": 1}},
        {**good, "sha256": "0" * 64},                      # another image's report under this name
        "[" * 100_000,
    ]
    for broken in damaged:
        path.write_text(broken if isinstance(broken, str) else json.dumps(broken), encoding="utf-8")
        analysis.clear_cache()
        report = analysis.analyze(data, store=cache_dir)
        assert report == computed and isinstance(report.text(), str)
        assert json.loads(path.read_text(encoding="utf-8")) == good          # rewritten


def test_a_failed_write_leaves_no_temporary_file(cache_dir):
    analysis.save_stored("1" * 64, {"unserialisable": object()}, cache_dir)
    folder = analysis.stored_folder(cache_dir)
    assert list(folder.iterdir()) == []
