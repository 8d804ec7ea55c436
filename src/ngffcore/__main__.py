"""``python -m ngffcore``: the ``ngffcore`` command line."""

from ngffcore.cli.main import main

raise SystemExit(main())
