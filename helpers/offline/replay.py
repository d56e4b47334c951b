"""Replaying a teacher's recording: real answers, recorded once, answered again offline to a class.

The recording file and how a request is keyed in it (normalised: model, messages with every image replaced by the
SHA-256 of its bytes, the parameters that change an answer) are :mod:`helpers.recordings`, shared with the
teacher's recording proxy. With ``VISION_RECORDING=recordings/class.json`` in ``.env`` (or ``python -m
helpers.offline --recording FILE``), the offline backend answers a request whose normalised form matches with the
recorded answer, under a first line that says so, and the header ``x-offline-source: recorded; model=...;
date=...``; anything else is answered by local analysis, under one line saying that nothing matched
(``x-offline-source: local; no recorded answer``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

from openai.types.completion_usage import CompletionUsage

from helpers import tokens
from helpers.offline.completions import Completion, usage_block
from helpers.offline.protocol import ChatRequest
from helpers.recordings import Recording, answer_label, normalise

__all__ = ["SOURCE_HEADER", "Recording", "fallback_line", "fallback_source", "replay"]

#: The response header that says where an answer came from (a recording, or local analysis).
SOURCE_HEADER = "x-offline-source"


# --- answering from it ------------------------------------------------------------------------------------

def fallback_line(recording: Recording) -> str:
    """The first line of a local answer when a recording is loaded but has no answer for the request."""
    return f"*No recorded answer in {recording.path.name} matches this request: answered by local analysis.*\n\n"


def fallback_source(recording: Recording) -> str:
    """The ``x-offline-source`` header of such a local answer."""
    return f"local; no recorded answer in {recording.path.name}"


def replay(recording: Recording, request: ChatRequest, prompt_tokens: Callable[[], int],
           digests: Mapping[str, str] | None = None) -> Completion | None:
    """The recorded answer to ``request`` as a :class:`Completion` (streams as the backend streams any answer),
    or None when nothing in the recording matches. The request's parsed body is matched (never parsed again);
    ``digests``: the SHA-256 of the images its data URLs hold, already computed by the backend.
    ``prompt_tokens`` counts the prompt when the recording has no ``usage`` (a stream recorded without
    ``include_usage``)."""
    model = request.model if request.route.api == "azure" else None
    key = normalise(request.payload, model=model, aliases=recording.aliases, digests=digests)["key"]
    entry = recording.answers.get(key)
    if entry is None:
        return None
    body = copy.deepcopy(entry["response"])
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    answered_by = str(body.get("model") or recording.model)
    calls = message.get("tool_calls") or []
    tool_call = None
    content = message.get("content") or ""
    structured = request.output.kind != "text" or bool(calls)
    if calls:
        function = calls[0].get("function") or {}
        tool_call = (str(function.get("name", "")), str(function.get("arguments", "")))
    elif not structured:
        content = answer_label(answered_by, recording.recorded) + content
    usage = body.get("usage")
    if isinstance(usage, dict):
        usage_obj = CompletionUsage.model_validate(usage)
    else:
        usage_obj = usage_block(prompt_tokens(), tokens.text_tokens(message.get("content") or "", request.model))
    source = f"recorded; model={answered_by}; date={recording.recorded}; recording={recording.path.name}"
    return Completion(id=str(body.get("id") or "chatcmpl-recorded"), created=int(body.get("created") or 0),
                      model=answered_by, content=content, finish_reason=str(choice.get("finish_reason") or "stop"),
                      usage=usage_obj, azure=request.route.api == "azure", enhancements=None, tool_call=tool_call,
                      n=max(1, len(body.get("choices") or [])), source=source)
