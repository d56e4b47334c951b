"""``python -m helpers.teacher execute|list|record|cost``: the commands of :mod:`helpers.teacher`."""

from helpers.teacher import main

raise SystemExit(main())
