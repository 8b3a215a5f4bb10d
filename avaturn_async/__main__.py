"""``python -m avaturn_async``: the same commands as the ``avaturn`` script."""

from ._cli import main

raise SystemExit(main())
