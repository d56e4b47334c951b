"""helpers.display: Markdown and notices in and out of Jupyter, image grids, tile and polygon overlays."""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.display import Markdown  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from helpers import display, notices, tokens  # noqa: E402
from helpers.display import (  # noqa: E402
    PolygonError,
    draw_polygons,
    draw_tiles,
    in_jupyter,
    notify,
    show_images,
    show_markdown,
    show_side_by_side,
    side_by_side_markdown,
    side_by_side_text,
    truncation_message,
)
from helpers.errors import TruncatedAnswerWarning  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def jupyter(monkeypatch):
    """Pretend to be inside a Jupyter kernel and collect what would be displayed."""
    shown: list = []
    for module in (display, notices):         # notices (notify) sits below display (show_markdown)
        monkeypatch.setattr(module, "in_jupyter", lambda: True)
        monkeypatch.setattr(module, "display_object", shown.append)
    return shown


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


# --- text and notices ----------------------------------------------------------------------------------

def test_not_in_jupyter_during_tests():
    assert in_jupyter() is False


def test_show_markdown_prints_plain_text_outside_jupyter(capsys):
    show_markdown("# Title\n\n**bold** answer")
    assert capsys.readouterr().out == "# Title\n\n**bold** answer\n"


def test_show_markdown_renders_markdown_in_jupyter(jupyter, capsys):
    show_markdown("**bold**")
    assert capsys.readouterr().out == ""
    [shown] = jupyter
    assert isinstance(shown, Markdown) and shown.data == "**bold**"


def test_show_side_by_side_prints_each_column_outside_jupyter(capsys):
    show_side_by_side({"detail='low'": "A rocket.", "detail='high'": "A **Falcon 9** rocket, lot L2417B."})
    out = capsys.readouterr().out
    assert out == ("== detail='low' ==\nA rocket.\n\n== detail='high' ==\nA **Falcon 9** rocket, lot L2417B.\n")


def test_show_side_by_side_renders_one_markdown_table_in_jupyter(jupyter, capsys):
    show_side_by_side({"low": "- one\n- two", "high": "```text\nr << d\n```"})
    assert capsys.readouterr().out == ""
    assert len(jupyter) == 1 and isinstance(jupyter[0], Markdown)
    source = jupyter[0].data
    assert source.startswith("<table>") and source.endswith("</table>")
    assert source.count("<td ") == 2 and 'width="50%"' in source
    # Each cell's Markdown sits between blank lines, so CommonMark renders it inside the HTML cell.
    assert "\n\n- one\n- two\n\n</td>" in source
    assert "\n\n```text\nr << d\n```\n\n</td>" in source


def test_side_by_side_escapes_titles_and_keeps_cells_closed():
    source = side_by_side_markdown({"<b>x</b>": "text\n</td>\nmore", "b": "", "c": "three"})
    assert "<th width=\"33%\">&lt;b&gt;x&lt;/b&gt;</th>" in source
    assert "\n </td>\nmore" in source            # a line that would close the cell early is indented
    assert source.count("\n</td>") == 3


@pytest.mark.parametrize("bad, error", [({}, ValueError), (["low", "high"], TypeError)])
def test_side_by_side_rejects_empty_or_non_mapping(bad, error):
    with pytest.raises(error):
        side_by_side_text(bad)


def test_notify_warns_outside_jupyter():
    with pytest.warns(TruncatedAnswerWarning, match="cut off"):
        notify(truncation_message(300), category=TruncatedAnswerWarning)


def test_notify_shows_a_blockquote_in_jupyter(jupyter):
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # no warning (it would print a file path in the notebook)
        notify(truncation_message(300), category=TruncatedAnswerWarning)
    [shown] = jupyter
    assert isinstance(shown, Markdown)
    assert shown.data == ("> **Note:** The answer was cut off at max_tokens=300 (finish_reason='length'). "
                          "Ask again with a larger max_tokens, or ask for a shorter answer.")
    notify("line one\n\nline two")
    assert jupyter[1].data == "> **Note:** line one\n>\n> line two"


def test_truncation_message_for_an_empty_answer():
    assert "hidden reasoning" in truncation_message(50, empty=True)
    assert "max_tokens=50" in truncation_message(50, empty=True)


# --- figures ----------------------------------------------------------------------------------------

def test_show_images_grid_titles_and_png(tmp_path):
    paths = []
    for i in range(5):
        path = tmp_path / f"frame_{i}.png"
        photo(80 + i, 60, seed=i).save(path)
        paths.append(path)
    fig = show_images(paths, cols=3)
    assert len(fig.axes) == 6                              # 2 rows x 3 columns, last cell empty
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:5] == [f"frame_{i}.png\n{80 + i}×60" for i in range(5)]
    assert titles[5] == ""
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 1, 1, 0]
    assert png_bytes(fig).startswith(PNG_MAGIC)
    assert fig.number not in plt.get_fignums()             # closed in pyplot: Jupyter shows it once


def test_show_images_accepts_single_images_arrays_and_titles():
    fig = show_images(photo(40, 30), titles=["noise"])
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "noise\n40×30"
    grey = np.linspace(0, 1, 20 * 10).reshape(10, 20)     # floats 0-1
    fig = show_images([grey, photo(10, 10)], cols=5)
    assert len(fig.axes) == 2                              # cols shrink to the number of images
    assert fig.axes[0].get_title() == "image 1\n20×10"


def test_show_images_errors():
    with pytest.raises(ValueError, match="one title per image"):
        show_images([photo(5, 5), photo(5, 5)], titles=["only one"])
    with pytest.raises(ValueError, match="at least one"):
        show_images([])
    with pytest.raises(ValueError, match="cols"):
        show_images([photo(5, 5)], cols=0)


def test_draw_tiles_tile_family():
    fig = draw_tiles(photo(1024, 1024), "high", "gpt-4o")
    ax = fig.axes[0]
    grid = tokens.tile_grid(1024, 1024, "high", "gpt-4o")
    rectangles = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rectangles) == len(grid.tiles) == 4
    assert ax.images[0].get_array().shape[:2] == (768, 768)   # drawn at the size the model sees
    title = ax.get_title()
    assert "1024×1024 → 768×768" in title and "4 tiles of 512 px" in title and f"{grid.tokens} tokens" in title
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "4"]
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_draw_tiles_low_detail_has_no_tiles():
    fig = draw_tiles(photo(2000, 1000), "low", "gpt-4o")
    ax = fig.axes[0]
    assert not [p for p in ax.patches if isinstance(p, Rectangle)]
    assert "no tiles (low detail)" in ax.get_title()
    assert ax.images[0].get_array().shape[:2] == (256, 512)


def test_draw_tiles_patch_family_draws_a_grid():
    grid = tokens.tile_grid(320, 200, "high", "gpt-4.1-mini")
    fig = draw_tiles(photo(320, 200), "high", "gpt-4.1-mini")
    ax = fig.axes[0]
    [lines] = [c for c in ax.collections if isinstance(c, LineCollection)]
    columns = len({t[0] for t in grid.tiles})
    rows = len({t[1] for t in grid.tiles})
    assert len(lines.get_segments()) == columns + 1 + rows + 1
    assert f"{len(grid.tiles)} patches of 32 px" in ax.get_title()


def test_draw_tiles_defaults_to_the_configured_model():
    fig = draw_tiles(photo(600, 400))
    from helpers.config import load_settings

    assert fig.axes[0].get_title().startswith(tokens.model_cost(load_settings().model).name)


def test_draw_polygons_scales_relative_coordinates():
    image = photo(200, 100)
    boxes = [
        [(0.1, 0.2), (0.5, 0.2), (0.5, 0.8), (0.1, 0.8)],              # pairs
        [{"x": 0.6, "y": 0.1}, {"x": 0.9, "y": 0.1}, {"x": 0.9, "y": 0.5}],  # Azure's dicts
        [0.0, 0.0, 1.0, 0.0, 1.0, 1.0],                                  # a flat list
    ]
    fig = draw_polygons(image, boxes, ["sign", "tree", "all"])
    ax = fig.axes[0]
    polygons = [p for p in ax.patches if isinstance(p, Polygon)]
    assert len(polygons) == 3
    np.testing.assert_allclose(polygons[0].get_xy()[:4], [[20, 20], [100, 20], [100, 80], [20, 80]])
    np.testing.assert_allclose(polygons[1].get_xy()[:3], [[120, 10], [180, 10], [180, 50]])
    assert [t.get_text() for t in ax.texts] == ["sign", "tree", "all"]
    assert png_bytes(fig).startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([(0.1, 0.1), (0.2, 0.2)], "at least 3"),
        ([(10, 20), (30, 20), (30, 40)], "outside 0-1"),
        ([0.1, 0.2, 0.3], "odd number"),
    ],
)
def test_draw_polygons_explains_bad_input(polygon, message):
    with pytest.raises(PolygonError, match=message) as err:
        draw_polygons(photo(10, 10), [polygon])
    assert isinstance(err.value, ValueError) and err.value.fix


def test_draw_polygons_label_count_must_match():
    with pytest.raises(ValueError, match="one label per polygon"):
        draw_polygons(photo(10, 10), [[(0, 0), (1, 0), (1, 1)]], ["a", "b"])


def test_returned_figures_render_as_png_in_a_jupyter_shell(monkeypatch):
    """In a kernel, a figure returned as the cell's value shows as PNG even with the Agg backend."""
    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    try:
        assert in_jupyter()
        fig = show_images([photo(30, 20)])
        data, _ = shell.display_formatter.format(fig)
        assert data["image/png"].startswith(PNG_MAGIC)
        assert data["text/plain"].startswith("<Figure size")   # deterministic text for nbval
    finally:
        monkeypatch.undo()
        InteractiveShell.clear_instance()


def test_docstring_examples():
    import doctest

    assert doctest.testmod(display).failed == 0
