"""Notices a learner should not miss: a Markdown blockquote in Jupyter, a Python warning elsewhere.

The lowest layer that talks to the learner, so helpers.client (a retired or soon-retired model) and helpers.chat
(an answer cut at ``max_tokens``) can use it without importing :mod:`helpers.display`, which sits on top.

>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     notify_truncated(300)
>>> caught[0].category.__name__
'TruncatedAnswerWarning'
"""

from __future__ import annotations

import warnings
from typing import Any

from helpers.errors import TruncatedAnswerWarning

__all__ = ["in_jupyter", "notify", "notify_truncated", "truncation_message"]


# --- where we are --------------------------------------------------------------------------------

def in_jupyter() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel), False in scripts, tests and plain IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # IPython is a course dependency, but helpers must not require it to import
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def display_object(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def notify(message: str, *, category: type[Warning] = UserWarning, stacklevel: int = 2) -> None:
    """Tell the learner something they should not miss, without a traceback.

    In Jupyter: a Markdown blockquote (deterministic text, no file paths, so stored outputs stay stable).
    Elsewhere: ``warnings.warn(message, category)``, which tests can catch.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     notify("The answer was cut.", category=TruncatedAnswerWarning)
    >>> caught[0].category.__name__
    'TruncatedAnswerWarning'
    """
    if in_jupyter():
        from IPython.display import Markdown

        quoted = "\n".join("> " + line if line else ">" for line in f"**Note:** {message}".splitlines())
        display_object(Markdown(quoted))
    else:
        warnings.warn(message, category, stacklevel=stacklevel + 1)


def truncation_message(max_tokens: int | None, *, empty: bool = False) -> str:
    """The deterministic notice for ``finish_reason == "length"``.

    ``empty=True``: nothing visible came back, typically a reasoning model that spent the whole budget thinking.

    >>> truncation_message(300)
    "The answer was cut off at max_tokens=300 (finish_reason='length'). Ask again with a larger max_tokens, or ask for a shorter answer."
    """
    limit = f"max_tokens={max_tokens}" if max_tokens is not None else "the max_tokens limit"
    if empty:
        return (f"No answer text came back: the model used all of {limit} (finish_reason='length'), "
                "probably on its hidden reasoning. Ask again with a larger max_tokens (e.g. 2000).")
    return (f"The answer was cut off at {limit} (finish_reason='length'). "
            "Ask again with a larger max_tokens, or ask for a shorter answer.")


def notify_truncated(max_tokens: int | None, *, empty: bool = False) -> None:
    """Shorthand used by :mod:`helpers.chat` when a reply stops at ``max_tokens``."""
    notify(truncation_message(max_tokens, empty=empty), category=TruncatedAnswerWarning, stacklevel=4)


