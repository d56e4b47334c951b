"""Keys and passwords never shown: masking a key, redacting secrets and URL passwords inside free text.

The bottom layer (it imports no course module), so every layer that prints, logs, saves or raises can use it.

>>> mask_secret("sk-proj-" + "x" * 24 + "1234")
'sk-...1234'
>>> redact_url("https://ann:hunter2@example.org/cat.png?x=1")
'https://ann:***@example.org/cat.png?x=1'
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["NO_KEY_PLACEHOLDER", "OFFLINE_API_KEY", "host_of", "mask_secret", "redact", "redact_url"]

#: The API key the offline backend accepts (any non-empty key works; this one says what it is).
OFFLINE_API_KEY = "offline"
#: The key sent to a compatible engine when OPENAI_API_KEY is not set (local engines ignore it; the SDK needs one).
NO_KEY_PLACEHOLDER = "not-needed"

# Things that look like secrets inside free text (server messages, URLs): OpenAI-style keys and 32+ hex chars.
_SECRET_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{8,}|[A-Fa-f0-9]{32,})\b")
# The user-info part of any URL in free text: everything up to the LAST '@' before the path ("u:p@ss@host").
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s?#]*)@(?=[^/\s@?#]*(?:[/?#\s]|$))")


# --- keys ------------------------------------------------------------------------------------

def mask_secret(value: str | None) -> str:
    """Show enough of a key to recognise it, never enough to use it.

    >>> mask_secret("sk-proj-" + "x" * 24 + "1234")
    'sk-...1234'
    >>> mask_secret(None)
    '(not set)'
    """
    if value is None or value == "":
        return "(not set)"
    if value in (OFFLINE_API_KEY, NO_KEY_PLACEHOLDER):
        return value  # literal placeholders, not secrets
    if len(value) < 16:
        return "****"
    prefix = "sk-" if value.startswith("sk-") else ""
    return f"{prefix}...{value[-4:]}"


def redact(text: str, *secrets: str | None) -> str:
    """Replace every given secret, and anything shaped like a key, in ``text`` by its masked form.

    >>> redact("bad key sk-" + "x" * 16 + "1234 given")
    'bad key sk-...1234 given'
    """
    for secret in secrets:
        if secret and secret not in (OFFLINE_API_KEY, NO_KEY_PLACEHOLDER) and len(secret) >= 4:
            text = text.replace(secret, mask_secret(secret))
    return _SECRET_PATTERN.sub(lambda m: mask_secret(m.group(0)), redact_url(text))


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, without any ``user:password@`` part.

    >>> host_of("http://user:secret@localhost:11434/v1")
    'localhost:11434'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def redact_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it replaced by ``***``.

    A URL keeps working for whoever needs it (the request body); this is for what is printed, logged or saved.

    >>> redact_url("GET http://u:p@h/x failed; see https://h/y")
    'GET http://u:***@h/x failed; see https://h/y'
    >>> redact_url("https://u:p@ss@host/x"), redact_url("https://TOKEN@host")
    ('https://u:***@host/x', 'https://***@host')
    """
    def masked(match: re.Match[str]) -> str:
        user, colon, _ = match.group(2).partition(":")
        # "user:password" keeps the user name; a bare token ("https://TOKEN@host") is itself the secret.
        return f"{match.group(1)}{user}:***@" if colon else f"{match.group(1)}***@"

    return _URL_USERINFO.sub(masked, text)
