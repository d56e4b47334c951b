"""LangChain against the offline backend (issue 11): the course's server is an OpenAI endpoint to other tools too.

LangChain is not a course dependency, so this module is skipped where it is not installed; `.ci/run` installs
``langchain-openai`` and runs it as its own step (README, "For maintainers").
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

langchain_openai = pytest.importorskip("langchain_openai")
from langchain_core.messages import HumanMessage  # noqa: E402  (only once LangChain is known to be there)

from helpers.images import to_data_url  # noqa: E402
from helpers.offline import ensure_server  # noqa: E402

MODEL = "gpt-5.4-mini"


class Label(BaseModel):
    text: str = Field(description="all the text on the label, read from the image")
    width: int = Field(description="image width in pixels")
    height: int = Field(description="image height in pixels")


@pytest.fixture(scope="module")
def question() -> HumanMessage:
    label = to_data_url("images/product_label.png", model=MODEL)
    return HumanMessage(content=[{"type": "text", "text": "Read this label."},
                                 {"type": "image_url", "image_url": {"url": label}}])


def chat(**options) -> langchain_openai.ChatOpenAI:
    return langchain_openai.ChatOpenAI(model=MODEL, base_url=ensure_server() + "/v1", api_key="offline",
                                       max_retries=0, **options)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output_gives_a_validated_object_filled_from_the_image(question, method):
    label = chat().with_structured_output(Label, method=method).invoke([question])
    assert isinstance(label, Label)
    assert (label.width, label.height) == (1536, 1024)              # measured, not invented
    assert label.text.startswith("ALPINE OAT BAR")                   # read by local OCR


def test_use_responses_api_answers_with_an_image(question):
    reply = chat(use_responses_api=True).invoke([question])
    text = reply.text if isinstance(reply.text, str) else reply.text()
    assert "ALPINE OAT BAR" in text and reply.usage_metadata["input_tokens"] > 1000   # the image is counted


def test_responses_mode_carries_a_conversation_across_turns(question):
    """Issue 23: LangChain's Responses mode sends the first answer back as ``output_text`` parts (with its id);
    the second turn failed with a 400 before."""
    model = chat(use_responses_api=True)
    history = [question]
    first = model.invoke(history)
    history += [first, HumanMessage(content="What is the product called?")]
    second = model.invoke(history)
    text = second.text if isinstance(second.text, str) else second.text()
    assert "ALPINE OAT BAR" in text                               # answered from the image of the first turn
    assert second.id != first.id                                  # two answers, two ids
    assert second.usage_metadata["input_tokens"] > first.usage_metadata["input_tokens"]


@pytest.mark.parametrize("responses", [False, True])
def test_bind_tools_calls_the_tool_and_takes_its_result(question, responses):
    """``bind_tools`` sends function tools without ``strict`` (rejected on Responses before issue 23); the call's
    result goes back as a ``ToolMessage`` (a ``function_call_output``) for the next turn."""
    from langchain_core.messages import ToolMessage

    model = chat(use_responses_api=responses).bind_tools([Label], tool_choice="Label")
    reply = model.invoke([question])
    call = reply.tool_calls[0]
    assert call["name"] == "Label" and call["args"]["text"].startswith("ALPINE OAT BAR")
    follow = chat(use_responses_api=responses).bind_tools([Label]).invoke(
        [question, reply, ToolMessage(content="saved", tool_call_id=call["id"])])
    assert not follow.tool_calls and (follow.text if isinstance(follow.text, str) else follow.text())
