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
