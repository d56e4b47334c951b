"""The offline backend as a stand-in for a real provider, and as honest as one about ``detail="low"``.

* ``course_image_url`` sends a real provider the public copy of a course image (images/public_copies.json).
  With no internet, the course's own server answers those URLs from the local file each copy stands for, so it
  can play the remote provider in the provider matrix (issue 9); any other URL is still refused.
* A tile-family model given ``detail="low"`` looks at a version that fits in 512 x 512, so the offline
  analysis reads that version too: the small print notebook 04 shows is lost at ``low`` and read at ``high``.
"""

from __future__ import annotations

import openai
import pytest

from helpers.course_images import public_copy
from helpers.images import to_data_url
from helpers.offline import ensure_server

LABEL_SMALL_PRINT = "Allergens: contains almonds and oats"


@pytest.fixture(scope="module")
def api():
    return openai.OpenAI(base_url=ensure_server() + "/v1", api_key="offline", max_retries=0)


def ask(api, url: str, detail: str = "auto", model: str = "gpt-4o", text: str = "What is in this image?"):
    return api.chat.completions.create(
        model=model, max_completion_tokens=3000,
        messages=[{"role": "user", "content": [{"type": "text", "text": text},
                                               {"type": "image_url", "image_url": {"url": url, "detail": detail}}]}])


def test_public_copies_of_course_images_are_answered_from_the_local_file(api, monkeypatch):
    monkeypatch.setenv("VISION_OFFLINE_DOWNLOADS", "off")          # no internet, as in CI
    reply = ask(api, public_copy("rocket.jpg").url)
    assert "640×427" in reply.choices[0].message.content          # the rocket photo, read from images/
    local = ask(api, to_data_url("images/rocket.jpg", model="gpt-4o"))
    assert reply.usage.prompt_tokens == local.usage.prompt_tokens  # same size, same image tokens


def test_other_public_urls_are_still_refused_without_downloads(api, monkeypatch):
    monkeypatch.setenv("VISION_OFFLINE_DOWNLOADS", "off")
    near_miss = public_copy("rocket.jpg").url.replace("rocket.jpg", "rocket2.jpg")
    with pytest.raises(openai.BadRequestError) as err:
        ask(api, near_miss)
    assert err.value.code == "invalid_image_url"


def test_low_detail_on_a_tile_model_loses_the_small_print(api):
    label = to_data_url("images/product_label.png", model="gpt-4o")
    low = ask(api, label, "low", text="Read the label.").choices[0].message.content
    high = ask(api, label, "high", text="Read the label.").choices[0].message.content
    assert "ALPINE" in low and "ALPINE" in high                   # the big title survives both
    assert LABEL_SMALL_PRINT in high and LABEL_SMALL_PRINT not in low


def test_low_detail_on_a_patch_model_changes_nothing(api):
    """On patch-family models (the course default) ``detail`` changes nothing about what is sent."""
    label = to_data_url("images/product_label.png", model="gpt-5.4-mini")
    low = ask(api, label, "low", model="gpt-5.4-mini", text="Read the label.")
    high = ask(api, label, "high", model="gpt-5.4-mini", text="Read the label.")
    assert low.choices[0].message.content == high.choices[0].message.content
    assert low.usage.prompt_tokens == high.usage.prompt_tokens
