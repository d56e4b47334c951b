"""The GPT Vision Course helpers: what the notebooks import, and nothing else.

Every lesson starts with one line::

    from helpers import setup; client, model = setup()

which prints the provider, the model and the endpoint in use (the offline backend unless ``.env`` says
otherwise). Every name a lesson uses is importable from here; three concepts heavy enough to load only when
used have public modules of their own: :mod:`helpers.ocr` (local OCR, character error rate),
:mod:`helpers.video` (frames from a video) and :mod:`helpers.evaluation` (evaluation runs and their reports).
Everything else under ``helpers`` is an implementation detail that may move; in particular lessons never import
:mod:`helpers.offline`, the embedded server.

>>> from helpers import image_tokens
>>> image_tokens(1024, 1024, "high", model="gpt-4o")
765

The modules behind these names, one concept each:

=================  ===========================================================================
``config``         which provider and model, from the environment and ``.env``, read once; keys masked
``client``         one official-SDK client for OpenAI, Azure OpenAI, a compatible engine or offline
``models``         model names: the default, aliases, snapshots, reasoning models, retirements
``tokens``         image and text tokens (tile and patch families), prices, the tile grid, chat overheads
``images``         load, sniff the real format, EXIF orientation, strip metadata, resize, data URLs
``course_images``  the course's sample images in ``images/``: their paths and public copies
``compare``        where two images differ, pixel by pixel
``injection``      instructions written inside an image (prompt injection), found in text
``chat``           ``query_image_description``, ``query_base64_image_description``, ``complete``
``conversation``   ``Conversation``: history, usage, drop old images, save/load
``structured``     ``extract(Model, images)``: a pydantic model in, a validated instance out (lesson 10)
``display``        Markdown answers (alone or side by side), image grids, tile and polygon overlays
``azure``          Azure request/response shapes, including the retired vision enhancements
=================  ===========================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from helpers.azure import (
    ENHANCEMENTS_RETIREMENT,
    MAX_IMAGES_AZURE,
    azure_max_images,
    build_enhanced_request,
    chat_url,
    parse_grounding,
)
from helpers.chat import (
    complete,
    image_content,
    last_request,
    query_base64_image_description,
    query_image_description,
    user_message,
)
from helpers.client import azure_simulator, azure_target, course_image_url, get_client, http_endpoint, setup
from helpers.config import (
    ENV_VARS,
    check_model,
    describe,
    host_of,
    load_settings,
    mask_secret,
    offline_settings,
)
from helpers.conversation import Conversation
from helpers.course_images import course_image_path
from helpers.display import (
    draw_boxes,
    draw_polygons,
    draw_tiles,
    show_images,
    show_markdown,
    show_side_by_side,
)
from helpers.errors import (
    ConfigurationError,
    ConversationFileError,
    CourseError,
    InvalidDetailError,
    RetiredModelError,
)
from helpers.images import (
    SUPPORTED_MIME,
    encode_image,
    image_part,
    load_image,
    prepare_image,
    sniff_mime,
    to_data_url,
)
from helpers.injection import find_instructions
from helpers.local import IMAGES_DIR
from helpers.models import CHECKED as MODELS_CHECKED
from helpers.models import DEFAULT_MODEL, is_reasoning_model, model_behind, retired_model, scheduled_shutdown
from helpers.structured import extract, extraction
from helpers.tokens import (
    DETAILS,
    PER_MESSAGE_TOKENS,
    REPLY_PRIMING_TOKENS,
    constants_table,
    estimate_cost,
    image_tokens,
    is_known_model,
    known_models,
    model_cost,
    scaled_size,
    text_tokens,
    tile_grid,
)

if TYPE_CHECKING:
    from helpers.compare import changed_regions

#: Names whose modules load heavy libraries (OpenCV), imported on first use.
_LAZY = {"changed_regions": "helpers.compare"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


__all__ = [
    "DEFAULT_MODEL",
    "DETAILS",
    "ENHANCEMENTS_RETIREMENT",
    "ENV_VARS",
    "IMAGES_DIR",
    "MAX_IMAGES_AZURE",
    "MODELS_CHECKED",
    "PER_MESSAGE_TOKENS",
    "REPLY_PRIMING_TOKENS",
    "SUPPORTED_MIME",
    "ConfigurationError",
    "Conversation",
    "ConversationFileError",
    "CourseError",
    "InvalidDetailError",
    "RetiredModelError",
    "azure_max_images",
    "azure_simulator",
    "azure_target",
    "build_enhanced_request",
    "changed_regions",
    "chat_url",
    "check_model",
    "complete",
    "constants_table",
    "course_image_path",
    "course_image_url",
    "describe",
    "draw_boxes",
    "draw_polygons",
    "draw_tiles",
    "encode_image",
    "estimate_cost",
    "extract",
    "extraction",
    "find_instructions",
    "get_client",
    "host_of",
    "http_endpoint",
    "image_content",
    "image_part",
    "image_tokens",
    "is_known_model",
    "is_reasoning_model",
    "known_models",
    "last_request",
    "load_image",
    "load_settings",
    "mask_secret",
    "model_behind",
    "model_cost",
    "offline_settings",
    "parse_grounding",
    "prepare_image",
    "query_base64_image_description",
    "query_image_description",
    "retired_model",
    "scaled_size",
    "scheduled_shutdown",
    "setup",
    "show_images",
    "show_markdown",
    "show_side_by_side",
    "sniff_mime",
    "text_tokens",
    "tile_grid",
    "to_data_url",
    "user_message",
]
