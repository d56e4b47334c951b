"""This machine: the repository folder, its ``images/`` folder, and which host names are this computer.

The one definition of each, used by the layers above (the offline backend serves ``IMAGES_DIR`` at ``/images/``
and refuses to fetch loopback addresses; the configuration reads ``.env`` from ``REPO_ROOT``). Nothing here
imports another course module.

>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("[::1]"), is_loopback("example.com")
(True, True, True, False)
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

#: The course repository (the folder that holds ``helpers/``, ``notebooks/`` and ``images/``).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The course's sample images and their transcripts (served by the offline backend at ``/images/``).
IMAGES_DIR = REPO_ROOT / "images"


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and the loopback addresses 127.0.0.0/8 and ``::1`` (brackets allowed): names that
    always mean this computer. ``0.0.0.0`` is not loopback (it means "every interface")."""
    if not host:
        return False
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
