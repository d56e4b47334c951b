"""The Responses API, files and Azure's v1 route as real clients use them (issue 23), through the official SDK.

Each test is a defect seen with third-party clients against the offline backend: assistant history as
``output_text`` parts, ``input += response.output``, tools without ``strict``, images returned by a tool, the
routes a stored response implies, ids, files, ``allowed_tools``, the API's refusals, and Azure's v1 route.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import openai
import pytest

from helpers import models, tokens

REPO = Path(__file__).resolve().parent.parent
MODEL = "gpt-4.1-mini"            # a classic model: takes temperature (the reasoning refusals are tested apart)
LABEL_BYTES = (REPO / "images" / "product_label.png").read_bytes()
LABEL = "data:image/png;base64," + base64.b64encode(LABEL_BYTES).decode()
TOOL = {"type": "function", "name": "read_label", "description": "Read a product label.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
                       "additionalProperties": False}}


@pytest.fixture(scope="module")
def client(api):
    return api


def test_assistant_history_as_output_text_and_refusal_parts(client):
    history = [{"role": "user", "content": "Hi"},
               {"role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
               {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
               {"role": "user", "content": "What did you say?"}]
    answer = client.responses.create(model=MODEL, input=history)
    assert answer.status == "completed" and answer.output_text
    # The history is billed: the same conversation without the two assistant turns costs fewer tokens.
    shorter = client.responses.create(model=MODEL, input=[history[0], history[3]])
    assert answer.usage.input_tokens > shorter.usage.input_tokens
    # Output parts stay refused where the API refuses them: in a user message.
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input=[{"role": "user", "content": [
            {"type": "output_text", "text": "Hi"}]}])
    assert err.value.param == "input[0].content[0].type"


def test_input_plus_response_output_second_turn(client):
    """The docs' pattern: ``input += response.output``, output items (with their ids and statuses, and a
    reasoning item) passed back as they came."""
    conversation: list = [{"role": "user", "content": [{"type": "input_text", "text": "Transcribe the label."},
                                                       {"type": "input_image", "image_url": LABEL, "detail": "low"}]}]
    first = client.responses.create(model=MODEL, input=conversation)
    conversation += [{"type": "reasoning", "id": "rs_" + "0" * 24, "summary": []}]
    conversation += [item.model_dump(exclude_none=True) for item in first.output]
    conversation += [{"role": "user", "content": "What is the product called?"}]
    second = client.responses.create(model=MODEL, input=conversation)
    assert second.status == "completed" and "ALPINE OAT BAR" in second.output_text   # the earlier image is read
    # role + content of each output item: the other documented pattern.
    third = client.responses.create(model=MODEL, input=[
        conversation[0], *({"role": o.role, "content": [c.model_dump() for c in o.content]} for o in first.output),
        {"role": "user", "content": "Thanks"}])
    assert third.status == "completed"


@pytest.mark.parametrize("tool", [
    {k: v for k, v in TOOL.items()},                                   # no "strict": LangChain's bind_tools
    {**TOOL, "strict": None},
    {**TOOL, "parameters": None, "strict": None}])
def test_function_tool_strict_and_parameters_optional(client, tool):
    called = client.responses.create(model=MODEL, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Read it."}, {"type": "input_image", "image_url": LABEL, "detail": "high"}]}],
        tools=[tool], tool_choice="required")
    call = called.output[0]
    assert call.type == "function_call" and call.name == "read_label"
    # The call's output goes back with the call: the second turn of a tool conversation.
    follow = client.responses.create(model=MODEL, previous_response_id=called.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "ALPINE OAT BAR"}])
    assert follow.status == "completed"


#: A plain JSON schema (no ``additionalProperties: false``): what LangChain's ``bind_tools`` sends.
LOOSE = {"type": "object", "properties": {"text": {"type": "string"}}}


def test_responses_function_tools_are_strict_by_default(client):
    """The Responses API's default is strict (openai-python's FunctionToolParam: "Default `true`"); Chat
    Completions' is not. The response's ``tools`` say what was applied."""
    ask = [{"role": "user", "content": [{"type": "input_image", "image_url": LABEL, "detail": "low"}]}]
    answer = client.responses.create(model=MODEL, input=ask, tools=[TOOL], tool_choice="required")
    assert answer.tools[0].strict is True                              # left out -> strict
    assert client.responses.create(model=MODEL, input=ask, tools=[{**TOOL, "strict": None}],
                                   tool_choice="required").tools[0].strict is True
    assert client.responses.create(model=MODEL, input=ask, tools=[{**TOOL, "strict": False}],
                                   tool_choice="required").tools[0].strict is False
    # A schema strict mode cannot take, strict left out: taken as a plain function (as the service takes
    # LangChain's); declared strict: the API's 400, on both APIs, naming the parameter.
    loose = client.responses.create(model=MODEL, input=ask, tools=[{**TOOL, "parameters": LOOSE}],
                                    tool_choice="required")
    assert loose.tools[0].strict is False and loose.output[0].type == "function_call"
    with pytest.raises(openai.BadRequestError, match="'additionalProperties' is required") as err:
        client.responses.create(model=MODEL, input=ask, tools=[{**TOOL, "parameters": LOOSE, "strict": True}])
    assert err.value.param == "tools[0].parameters" and err.value.code == "invalid_function_parameters"
    chat_tool = {"type": "function", "function": {"name": "read_label", "parameters": LOOSE}}
    chat_ask = [{"role": "user", "content": "Read it."}]
    assert client.chat.completions.create(model=MODEL, messages=chat_ask, tools=[chat_tool]).choices   # not strict
    with pytest.raises(openai.BadRequestError, match="Invalid schema for function 'read_label'") as err:
        client.chat.completions.create(model=MODEL, messages=chat_ask, tools=[
            {"type": "function", "function": {**chat_tool["function"], "strict": True}}])
    assert err.value.param == "tools[0].function.parameters"


def test_item_reference_resolves_to_a_stored_item(client):
    """``{"type": "item_reference", "id": ...}`` names an item of a stored response instead of sending it again."""
    first = client.responses.create(model=MODEL, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Transcribe the label."},
        {"type": "input_image", "image_url": LABEL, "detail": "low"}]}])
    asked = client.responses.input_items.list(first.id).data[0]          # the stored input message, with its id
    answer = first.output[0]
    follow = [{"type": "item_reference", "id": asked.id}, {"type": "item_reference", "id": answer.id},
              {"role": "user", "content": "What is the product called?"}]
    second = client.responses.create(model=MODEL, input=follow)
    assert "ALPINE OAT BAR" in second.output_text                        # the referenced image was read...
    sent_again = client.responses.create(model=MODEL, input=[
        {"role": "user", "content": [{"type": "input_text", "text": "Transcribe the label."},
                                     {"type": "input_image", "image_url": LABEL, "detail": "low"}]},
        {"role": "assistant", "content": answer.content[0].text}, follow[2]])
    assert second.usage.input_tokens == sent_again.usage.input_tokens     # ...and billed as if sent again
    assert client.responses.input_tokens.count(model=MODEL, input=follow).input_tokens == second.usage.input_tokens
    # The type may be left out (ItemReferenceParam), as the SDK's types allow.
    assert client.responses.create(model=MODEL, input=[{"id": asked.id}, follow[2]]).status == "completed"
    # An id nobody stored (an unknown id, or an item of a response created with store=false): the API's 404.
    unstored = client.responses.create(model=MODEL, input="Hi", store=False)
    for missing_id in ("msg_" + "0" * 48, unstored.output[0].id):
        with pytest.raises(openai.NotFoundError, match=f"Item with id '{missing_id}' not found") as err:
            client.responses.create(model=MODEL, input=[{"type": "item_reference", "id": missing_id}])
        assert err.value.param == "input"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input=[{"type": "item_reference"}])
    assert err.value.param == "input[0].id"
    # An unknown kind lists the SDK's kinds, item_reference among them (it read "typing.Literal[...]" before).
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input=[{"type": "no_such_item"}])
    assert "'item_reference', " in err.value.message and "typing" not in err.value.message


def test_function_call_output_with_an_image_is_analysed_and_billed_as_an_image(client):
    call = {"type": "function_call", "call_id": "call_1", "name": "fetch_photo", "arguments": "{}"}
    returned = {"type": "function_call_output", "call_id": "call_1",
                "output": [{"type": "input_text", "text": "the photo:"},
                           {"type": "input_image", "image_url": LABEL, "detail": "low"}]}
    asked = {"role": "user", "content": "Fetch the photo and read it."}
    answer = client.responses.create(model=MODEL, input=[asked, call, returned])
    as_text = client.responses.create(model=MODEL, input=[asked, call, {**returned, "output": "the photo:"}])
    image = tokens.image_tokens(1536, 1024, "low", MODEL)
    # Before: the output list became its Python repr, base64 and all: 94,106 input tokens for one PNG.
    assert 0 < answer.usage.input_tokens - as_text.usage.input_tokens - image < 20   # the image's tokens + a turn
    assert "ALPINE OAT BAR" in answer.output_text                                   # the image was read
    counted = client.responses.input_tokens.count(model=MODEL, input=[asked, call, returned])
    assert counted.input_tokens == answer.usage.input_tokens


def test_stored_response_routes(client):
    first = client.responses.create(model=MODEL, input=[{"role": "user", "content": "Hi"}])
    again = client.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == first.output_text and again.store is True
    items = client.responses.input_items.list(first.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "Hi"
    assert items.data[0].id.startswith("msg_")
    with pytest.raises(openai.BadRequestError, match="synchronous"):
        client.responses.cancel(first.id)
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError, match=f"Response with id '{first.id}' not found"):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, previous_response_id=first.id, input="Hi")


def test_store_false_created_at_and_background(client, server):
    raw = client.responses.with_raw_response.create(model=MODEL, input="Hi", store=False)
    body = raw.http_response.json()
    assert body["store"] is False and isinstance(body["created_at"], int)   # an integer, as the API sends
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(body["id"])
    with pytest.raises(openai.NotFoundError, match="Previous response with id") as err:
        client.responses.create(model=MODEL, previous_response_id=body["id"], input="Go on")
    assert err.value.param == "previous_response_id"
    with pytest.raises(openai.BadRequestError, match="synchronously") as err:
        client.responses.create(model=MODEL, input="Hi", background=True)
    assert err.value.param == "background"


def test_input_tokens_equal_what_usage_bills(client):
    question = [{"role": "user", "content": [{"type": "input_text", "text": "Transcribe it."},
                                             {"type": "input_image", "image_url": LABEL, "detail": "high"}]}]
    for options in ({}, {"instructions": "Be brief.", "tools": [TOOL]}):
        counted = client.responses.input_tokens.count(model=MODEL, input=question, **options)
        billed = client.responses.create(model=MODEL, input=question, **options).usage.input_tokens
        assert counted.input_tokens == billed > tokens.image_tokens(1536, 1024, "high", MODEL)


def test_ids_are_fresh_per_answer(client):
    first = client.responses.with_raw_response.create(model=MODEL, input="Same question", tools=[TOOL],
                                                      tool_choice="required")
    second = client.responses.with_raw_response.create(model=MODEL, input="Same question", tools=[TOOL],
                                                       tool_choice="required")
    one, two = first.parse(), second.parse()
    assert one.output[0].arguments == two.output[0].arguments          # deterministic answer
    assert one.id != two.id and one.output[0].call_id != two.output[0].call_id
    assert one.output[0].id != two.output[0].id
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    texts = [client.responses.create(model=MODEL, input="Hi") for _ in range(2)]
    assert texts[0].output[0].id != texts[1].output[0].id and texts[0].output[0].id.startswith("msg_")


def test_files_have_their_own_ids_list_and_content(client):
    one = client.files.create(file=("label.png", LABEL_BYTES), purpose="vision")
    two = client.files.create(file=("label.png", LABEL_BYTES), purpose="user_data")
    assert one.id != two.id and client.files.retrieve(one.id).purpose == "vision"     # two uploads, two files
    listed = [f.id for f in client.files.list()]
    assert one.id in listed and two.id in listed
    vision = [f.id for f in client.files.list(purpose="vision")]
    assert one.id in vision and two.id not in vision
    assert client.files.content(one.id).content == LABEL_BYTES
    client.files.delete(one.id)
    assert client.files.retrieve(two.id).id == two.id                                  # deleting one keeps the other
    with pytest.raises(openai.NotFoundError):
        client.files.content(one.id)


def test_allowed_tools_on_both_apis(client):
    other = {**TOOL, "name": "other"}
    called = client.responses.create(model=MODEL, input="Read it.", tools=[other, TOOL], tool_choice={
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "read_label"}]})
    assert called.output[0].name == "read_label"
    chat_tools = [{"type": "function", "function": {k: v for k, v in t.items() if k != "type"}} for t in (other, TOOL)]
    chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Read it."}],
                                          tools=chat_tools, tool_choice={"type": "allowed_tools", "allowed_tools": {
                                              "mode": "required",
                                              "tools": [{"type": "function", "function": {"name": "read_label"}}]}})
    assert chat.choices[0].message.tool_calls[0].function.name == "read_label"


@pytest.mark.parametrize(("call", "param", "words"), [
    (lambda c: c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], logprobs=True),
     "logprobs", "Unsupported parameter: 'logprobs'"),
    (lambda c: c.responses.create(model=MODEL, input="Hi", include=["message.output_text.logprobs"]),
     "include", "Unsupported parameter: 'include'"),
    (lambda c: c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                         extra_body={"max_token": 5}),
     "max_token", "Unrecognized request argument supplied: max_token"),
    (lambda c: c.responses.create(model=MODEL, input="Hi", extra_body={"max_token": 5}),
     "max_token", "Unknown parameter: 'max_token'."),
    (lambda c: c.responses.create(model=MODEL, input="Hi", extra_body={"stop": ["\n"]}),
     "stop", "Unknown parameter: 'stop'."),
    (lambda c: c.chat.completions.create(model="gpt-5-nano", messages=[{"role": "user", "content": "Hi"}],
                                         temperature=0.2),
     "temperature", "Unsupported value: 'temperature' does not support 0.2 with this model"),
    (lambda c: c.responses.create(model="gpt-5-nano", input="Hi", temperature=0.2),
     "temperature", "Unsupported parameter: 'temperature' is not supported with this model."),
    (lambda c: c.responses.create(model=MODEL, input="Hi", reasoning={"effort": "low"}),
     "reasoning.effort", "Unsupported parameter: 'reasoning.effort'"),
    (lambda c: c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                         reasoning_effort="low"),
     "reasoning_effort", "Unsupported parameter: 'reasoning_effort'"),
    (lambda c: c.responses.create(model=MODEL, input="Hi", conversation="conv_1"),
     "conversation", "keeps no conversations"),
])
def test_what_the_api_refuses_is_refused(client, call, param, words):
    assert models.is_reasoning_model("gpt-5-nano") and not models.is_reasoning_model(MODEL)
    with pytest.raises(openai.BadRequestError) as err:
        call(client)
    assert err.value.param == param and words in err.value.message


def test_what_the_api_takes_is_taken(client):
    """The other side of strictness: a reasoning model's default temperature, and a classic model's."""
    client.chat.completions.create(model="gpt-5-nano", messages=[{"role": "user", "content": "Hi"}], temperature=1)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], temperature=0.2)
    client.responses.create(model=MODEL, input="Hi", temperature=0.2, top_p=0.9)
    client.responses.create(model="gpt-5-nano", input="Hi", reasoning={"effort": "low"})
    client.chat.completions.create(model="gpt-5-nano", messages=[{"role": "user", "content": "Hi"}],
                                   reasoning_effort="low")


def test_azure_v1_route_with_the_plain_client(server):
    """Azure's v1 route: ``OpenAI(base_url="https://RESOURCE.openai.azure.com/openai/v1/")``, Bearer auth."""
    azure = openai.OpenAI(base_url=server.base_url + "/openai/v1/", api_key="azure-key", max_retries=0, timeout=60)
    question = [{"role": "user", "content": [{"type": "text", "text": "Transcribe it."},
                                             {"type": "image_url", "image_url": {"url": LABEL, "detail": "low"}}]}]
    chat = azure.chat.completions.create(model="my-deployment", messages=question)
    assert "ALPINE OAT BAR" in chat.choices[0].message.content
    assert chat.model == models.DEFAULT_MODEL                         # an unknown deployment name: the default
    answer = azure.responses.create(model="gpt-4.1-mini", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Transcribe it."}, {"type": "input_image", "image_url": LABEL,
                                                          "detail": "low"}]}])
    assert "ALPINE OAT BAR" in answer.output_text
    assert azure.responses.retrieve(answer.id).id == answer.id
    assert "gpt-4.1-mini" in [m.id for m in azure.models.list()]


def test_azure_v1_route_with_the_api_key_header(server):
    """Azure's own ``api-key`` header works as well as Bearer; no key at all is Azure's 401."""
    url = server.base_url + "/openai/v1/chat/completions"
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Hi"}]}
    assert httpx.post(url, json=body, headers={"api-key": "azure-key"}, timeout=60).status_code == 200
    assert httpx.post(url, json=body, timeout=60).status_code == 401
    listed = httpx.get(server.base_url + "/openai/models", params={"api-version": "2024-10-21"},
                       headers={"api-key": "azure-key"}, timeout=60)
    assert listed.status_code == 200 and "gpt-4.1-mini" in [m["id"] for m in listed.json()["data"]]


def test_azure_dated_route_retrieves_a_stored_response(server):
    """``AzureOpenAI`` with a dated api-version: create, then retrieve and list the input of the same response."""
    azure = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key="azure-key", api_version="2025-04-01-preview",
                               max_retries=0, timeout=60)
    created = azure.responses.create(model="gpt-4.1-mini", input="Hi")
    assert azure.responses.retrieve(created.id).output_text == created.output_text
    assert azure.responses.input_items.list(created.id).data[0].content[0].text == "Hi"
    counted = azure.responses.input_tokens.count(model="gpt-4.1-mini", input="Hi")
    assert counted.input_tokens == created.usage.input_tokens
