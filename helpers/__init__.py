"""The GPT Vision Course helpers: what the notebooks import, and nothing else.

Every lesson starts with one line::

    from helpers import setup; client, model = setup()

which prints the provider, the model and the endpoint in use (the offline backend unless ``.env`` says
otherwise). The modules behind these names, one concept each:

=================  ===========================================================================
``config``         which provider and model, from the environment and ``.env``, read once; keys masked
``client``         one official-SDK client for OpenAI, Azure OpenAI, a compatible engine or offline
``models``         model names: the default, aliases, snapshots, reasoning models, retirements
``tokens``         image tokens (tile and patch families), prices, the tile grid
``images``         load, sniff the real format, EXIF orientation, strip metadata, resize, data URLs
``chat``           ``query_image_description``, ``query_base64_image_description``, ``complete``
``conversation``   ``Conversation``: history, usage, drop old images, save/load
``structured``     ``extract(Model, images)``: a pydantic model in, a validated instance out (lesson 10)
``display``        Markdown answers (alone or side by side), image grids, tile and polygon overlays
``ocr``            local OCR (RapidOCR) and the character error rate
``azure``          Azure request/response shapes, including the retired vision enhancements
``video``          frames sampled by seeking, under a token budget
``offline``        the embedded Chat Completions server (``python -m helpers.offline``)
=================  ===========================================================================

Heavy modules (``ocr``, ``video``, ``offline``) are imported only when used.
"""

from __future__ import annotations

from helpers.chat import query_base64_image_description, query_image_description
from helpers.client import course_image_url, get_client, setup
from helpers.config import load_settings
from helpers.conversation import Conversation
from helpers.display import draw_polygons, draw_tiles, show_images, show_markdown, show_side_by_side
from helpers.errors import CourseError
from helpers.images import encode_image, image_part, load_image, prepare_image, to_data_url
from helpers.models import DEFAULT_MODEL, retired_model
from helpers.tokens import estimate_cost, image_tokens, scaled_size, tile_grid

__all__ = [
    "DEFAULT_MODEL",
    "Conversation",
    "CourseError",
    "course_image_url",
    "draw_polygons",
    "draw_tiles",
    "encode_image",
    "estimate_cost",
    "get_client",
    "image_part",
    "image_tokens",
    "load_image",
    "load_settings",
    "prepare_image",
    "query_base64_image_description",
    "query_image_description",
    "retired_model",
    "scaled_size",
    "setup",
    "show_images",
    "show_markdown",
    "show_side_by_side",
    "tile_grid",
    "to_data_url",
]
