"""Showing answers and images: Markdown, notices, image grids, tile and grounding overlays.

Everything works both in Jupyter and in a plain Python process (tests, scripts):

* text: :func:`show_markdown` renders Markdown in Jupyter and prints plain text elsewhere;
  :func:`show_side_by_side` puts several answers next to each other the same way;
* notices: :func:`notify` shows a Markdown blockquote in Jupyter and raises a Python warning elsewhere;
* plots: :func:`show_images`, :func:`draw_tiles`, :func:`draw_polygons` build a matplotlib figure with the
  backend-independent API (``fig, ax = plt.subplots(...)``), close it in pyplot (so Jupyter does not draw it
  twice) and return it. End a cell with the call, or pass the figure to ``display(fig)``; it renders as PNG.

>>> from helpers.display import show_markdown
>>> show_markdown("**Hello**")
**Hello**
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from helpers import models
from helpers.errors import CourseError
from helpers.images import load_image
from helpers.notices import display_object, in_jupyter, notify, notify_truncated, truncation_message
from helpers.tokens import tile_grid

__all__ = ["PolygonError", "draw_polygons", "draw_tiles", "in_jupyter", "notify", "notify_truncated", "show_images",
           "show_markdown", "truncation_message"]

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class PolygonError(CourseError, ValueError):
    """A polygon that cannot be drawn: fewer than 3 points, or coordinates outside 0-1."""


# --- text ---------------------------------------------------------------------------------------

def show_markdown(text: str) -> None:
    """Render ``text`` as Markdown in Jupyter; print it unchanged elsewhere.

    >>> show_markdown("# Title")
    # Title

    Taught in notebooks/01_image_urls.ipynb.
    """
    text = "" if text is None else str(text)
    if in_jupyter():
        from IPython.display import Markdown

        display_object(Markdown(text))
    else:
        print(text)


def side_by_side_markdown(columns: Mapping[str, str]) -> str:
    """The Markdown (with a little HTML) that :func:`show_side_by_side` renders: one table row of columns.

    Each cell is its own Markdown block between blank lines, the CommonMark rule that lets Markdown live
    inside an HTML table, so JupyterLab, VS Code and GitHub render bold text, lists and code blocks in each
    column. Headings are escaped as HTML.

    >>> print(side_by_side_markdown({"low": "A rocket.", "high": "A **Falcon 9** rocket."}))
    <table>
    <tr><th width="50%">low</th><th width="50%">high</th></tr>
    <tr>
    <td valign="top" width="50%">
    <BLANKLINE>
    A rocket.
    <BLANKLINE>
    </td>
    <td valign="top" width="50%">
    <BLANKLINE>
    A **Falcon 9** rocket.
    <BLANKLINE>
    </td>
    </tr>
    </table>
    """
    items = _columns(columns)
    width = f"{100 // len(items)}%"
    head = "".join(f'<th width="{width}">{html.escape(title, quote=False)}</th>' for title, _ in items)
    lines = ["<table>", f"<tr>{head}</tr>", "<tr>"]
    for _, text in items:
        # A line that opens with "</td" or "</table" would close the cell early: indent it by one space.
        body = "\n".join(" " + line if line.lstrip().lower().startswith(("</td", "</tr", "</table")) else line
                         for line in text.strip("\n").splitlines())
        lines += [f'<td valign="top" width="{width}">', "", body, "", "</td>"]
    lines += ["</tr>", "</table>"]
    return "\n".join(lines)


def side_by_side_text(columns: Mapping[str, str]) -> str:
    """The plain-text form of :func:`show_side_by_side` (scripts, tests): each column under its title.

    >>> print(side_by_side_text({"low": "A rocket.", "high": "A Falcon 9 rocket."}))
    == low ==
    A rocket.
    <BLANKLINE>
    == high ==
    A Falcon 9 rocket.
    """
    return "\n\n".join(f"== {title} ==\n{text.strip()}" for title, text in _columns(columns))


def _columns(columns: Mapping[str, str]) -> list[tuple[str, str]]:
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns must be a mapping of title -> text, got {type(columns).__name__}.")
    items = [(str(title), "" if text is None else str(text)) for title, text in columns.items()]
    if not items:
        raise ValueError("show_side_by_side needs at least one column.")
    return items


def show_side_by_side(columns: Mapping[str, str]) -> None:
    """Show texts next to each other, one column per ``title: text`` item, each rendered as Markdown.

    For comparing answers: the same question at ``detail="low"`` and ``"high"``, two models, two prompts.
    In Jupyter the columns are a table whose cells render Markdown (:func:`side_by_side_markdown`);
    elsewhere each column is printed under its title (:func:`side_by_side_text`).

    >>> show_side_by_side({"low": "A rocket.", "high": "A Falcon 9 rocket."})
    == low ==
    A rocket.
    <BLANKLINE>
    == high ==
    A Falcon 9 rocket.

    Taught in notebooks/04_detail_levels.ipynb.
    """
    if in_jupyter():
        from IPython.display import Markdown

        display_object(Markdown(side_by_side_markdown(columns)))
    else:
        print(side_by_side_text(columns))


# --- figures ------------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_layout() -> Iterator[None]:
    """Silence matplotlib's layout and missing-glyph warnings: they carry this file's absolute path into
    notebook outputs (which nbval compares on other machines) and tell a learner nothing they can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Tight layout not applied")
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from")
        yield


def _png_formatter(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    with _quiet_layout():
        fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _register_png_formatter() -> None:
    """Make a returned Figure render as PNG in Jupyter whatever the matplotlib backend (e.g. MPLBACKEND=Agg)."""
    if not in_jupyter():
        return
    from IPython import get_ipython
    from matplotlib.figure import Figure

    formatter = get_ipython().display_formatter.formatters["image/png"]
    formatter.for_type(Figure, _png_formatter)


def _finish(fig: Figure) -> Figure:
    import matplotlib.pyplot as plt

    plt.close(fig)  # pyplot forgets it (no second copy at the end of the cell); the object still renders
    _register_png_formatter()
    return fig


def _to_pil(image: Any) -> Image.Image:
    """A PIL image from anything the course passes around: PIL, numpy array, path, bytes, URL, PreparedImage."""
    if isinstance(image, Image.Image):
        return image
    if hasattr(image, "__array_interface__") and not isinstance(image, (bytes, bytearray)):
        array = np.asarray(image)
        if array.dtype != np.uint8:
            array = np.clip(array * (255 if array.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    data = getattr(image, "data", None)  # helpers.images.PreparedImage
    if isinstance(data, (bytes, bytearray)) and hasattr(image, "mime_type"):
        return Image.open(io.BytesIO(data))
    return load_image(image)


def _source_title(image: Any, index: int) -> str:
    name = getattr(image, "source_name", None)
    if name:
        return os.path.basename(str(name))
    if isinstance(image, (str, os.PathLike)) and not str(image).startswith(("data:", "http://", "https://")):
        return os.path.basename(os.fspath(image))
    return f"image {index + 1}"


def show_images(images: Sequence[Any] | Any, titles: Sequence[str] | None = None, cols: int = 3, *,
                size: float = 4.0) -> Figure:
    """A grid of images with titles (file names by default); returns the figure.

    ``images`` may be paths, bytes, PIL images, numpy arrays or ``PreparedImage`` objects (one or a list).

    >>> from PIL import Image
    >>> fig = show_images([Image.new("RGB", (64, 32), "red")], titles=["red"])
    >>> len(fig.axes)
    1

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    import matplotlib.pyplot as plt

    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        images = [images]
    images = list(images)
    if not images:
        raise ValueError("show_images needs at least one image.")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images: give one title per image (or none).")
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise ValueError(f"cols must be a positive whole number, got {cols!r}.")
    cols = min(cols, len(images))
    rows = math.ceil(len(images) / cols)
    pictures = [_to_pil(image) for image in images]
    # Rows as tall as the tallest picture needs (16:9 video frames would leave gaps in square cells),
    # plus room for the two-line titles.
    aspect = max(picture.height / picture.width for picture in pictures)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, (size * aspect + 0.5) * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        picture = pictures[i]
        ax.imshow(picture.convert("RGB") if picture.mode not in ("RGB", "L") else picture,
                  cmap="gray" if picture.mode == "L" else None)
        title = titles[i] if titles is not None else _source_title(images[i], i)
        ax.set_title(f"{title}\n{picture.width}×{picture.height}", fontsize=10)
    with _quiet_layout():
        fig.tight_layout()
    return _finish(fig)


def draw_tiles(image: Any, detail: str = "high", model: str | None = None) -> Figure:
    """The image as the model sees it (scaled), with the 512-px tiles (or 32-px patches) it is billed for.

    Uses :func:`helpers.tokens.tile_grid`; the title gives the sizes, the tile count and the image tokens.
    ``model=None`` means the configured model (``VISION_MODEL`` or the course default).

    >>> from PIL import Image
    >>> fig = draw_tiles(Image.new("RGB", (1024, 1024), "white"), "high", "gpt-4o")
    >>> "4 tiles" in fig.axes[0].get_title()
    True

    Taught in notebooks/04_detail_levels.ipynb.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    if model is None:
        model = models.configured_model()
    picture = _to_pil(image)
    grid = tile_grid(picture.width, picture.height, detail, model)
    width, height = grid.size
    scaled = picture.convert("RGB").resize((width, height)) if (width, height) != picture.size \
        else picture.convert("RGB")
    fig, ax = plt.subplots(figsize=(7, 7 * height / width if width >= height else 7))
    ax.imshow(scaled)
    if grid.family == "tile":
        for number, (x0, y0, x1, y1) in enumerate(grid.tiles, start=1):
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="red",
                                   linewidth=2))
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, str(number), color="red", fontsize=14, ha="center",
                    va="center", bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
        unit = "tile" if len(grid.tiles) == 1 else "tiles"
        what = f"{len(grid.tiles)} {unit} of {grid.tile_size} px" if grid.tiles else "no tiles (low detail)"
    else:  # patch family: hundreds of 32-px patches, drawn as grid lines
        xs = sorted({t[0] for t in grid.tiles} | {width})
        ys = sorted({t[1] for t in grid.tiles} | {height})
        lines = [[(x - 0.5, -0.5), (x - 0.5, height - 0.5)] for x in xs] + \
                [[(-0.5, y - 0.5), (width - 0.5, y - 0.5)] for y in ys]
        ax.add_collection(LineCollection(lines, colors="red", linewidths=0.4))
        what = f"{len(grid.tiles)} patches of {grid.tile_size} px"
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_title(f"{grid.model}, detail={detail}: {picture.width}×{picture.height} → {width}×{height}, "
                 f"{what}, {grid.tokens} tokens", fontsize=10)
    ax.axis("off")
    with _quiet_layout():
        fig.tight_layout()
    return _finish(fig)


def _points(polygon: Any, index: int) -> list[tuple[float, float]]:
    """Accept [(x, y), ...], [{"x": .., "y": ..}, ...] or a flat [x0, y0, x1, y1, ...] list (Azure's shapes)."""
    if isinstance(polygon, Mapping) and "polygon" in polygon:
        polygon = polygon["polygon"]
    items = list(polygon)
    if items and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        if len(items) % 2:
            raise PolygonError(f"Polygon {index + 1} has an odd number of coordinates ({len(items)}).",
                               fix="give x, y pairs: [x0, y0, x1, y1, ...].")
        items = list(zip(items[0::2], items[1::2], strict=True))
    points = []
    for item in items:
        x, y = (item["x"], item["y"]) if isinstance(item, Mapping) else item
        points.append((float(x), float(y)))
    if len(points) < 3:
        raise PolygonError(f"Polygon {index + 1} has {len(points)} point(s); a polygon needs at least 3.",
                           fix="pass the polygon's corner points as (x, y) pairs.")
    bad = [p for p in points if not (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0)]
    if bad:
        raise PolygonError(
            f"Polygon {index + 1} has points outside 0-1: {bad[:3]}.",
            fix="grounding polygons use coordinates relative to the image size (0-1); divide pixel "
                "coordinates by the width and height first.",
        )
    return points


def draw_polygons(image: Any, polygons: Iterable[Any], labels: Sequence[str] | None = None) -> Figure:
    """Outline regions given as polygons in relative (0-1) coordinates, e.g. Azure grounding results.

    >>> from PIL import Image
    >>> fig = draw_polygons(Image.new("RGB", (200, 100)), [[(0.1, 0.1), (0.5, 0.1), (0.5, 0.9)]], ["sign"])
    >>> len(fig.axes[0].patches)
    1

    Taught in notebooks/07_azure.ipynb.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    picture = _to_pil(image)
    shapes = [_points(p, i) for i, p in enumerate(polygons)]
    if labels is not None and len(labels) != len(shapes):
        raise ValueError(f"{len(labels)} labels for {len(shapes)} polygons: give one label per polygon (or none).")
    width, height = picture.size
    fig, ax = plt.subplots(figsize=(7, 7 * height / width if width >= height else 7))
    ax.imshow(picture.convert("RGB"))
    colours = plt.get_cmap("tab10")
    for i, points in enumerate(shapes):
        colour = colours(i % 10)
        pixels = [(x * width, y * height) for x, y in points]
        ax.add_patch(Polygon(pixels, closed=True, fill=False, edgecolor=colour, linewidth=2))
        if labels is not None:
            x, y = min(pixels, key=lambda p: (p[1], p[0]))
            ax.text(x, y, labels[i], color="white", fontsize=10, va="bottom",
                    bbox={"facecolor": colour, "alpha": 0.8, "edgecolor": "none", "pad": 2})
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    with _quiet_layout():
        fig.tight_layout()
    return _finish(fig)


def draw_boxes(image: Any, boxes: Iterable[Sequence[float]], labels: Sequence[str] | None = None) -> Figure:
    """Outline boxes given as ``[x_min, y_min, x_max, y_max]`` in pixels of ``image`` (origin top-left), the
    convention of the course's structured answers (:mod:`helpers.structured`); boxes are clipped to the image.

    >>> from PIL import Image
    >>> len(draw_boxes(Image.new("RGB", (200, 100)), [[10, 10, 120, 60]], ["label"]).axes[0].patches)
    1

    Taught in notebooks/10_structured_output.ipynb.
    """
    picture = _to_pil(image)
    width, height = picture.size
    polygons = []
    for box in boxes:
        x0, y0, x1, y1 = (float(v) for v in box)
        x0, x1 = sorted((min(max(x0 / width, 0.0), 1.0), min(max(x1 / width, 0.0), 1.0)))
        y0, y1 = sorted((min(max(y0 / height, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0)))
        polygons.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    return draw_polygons(picture, polygons, labels)
