"""``python -m helpers.course ...``: the older spelling of ``python -m helpers.teacher ...`` (the same commands).

Kept because notebook 00's stored output (the ``VISION_RECORDING`` line of ``ENV_VARS``) and the offline server's
messages name it; new text names ``python -m helpers.teacher``.
"""

from helpers.teacher import main

if __name__ == "__main__":
    raise SystemExit(main())
