"""``python -m ngffcore``: the ``ngffcore`` command line."""

from ngffcore.cli import main

raise SystemExit(main())
