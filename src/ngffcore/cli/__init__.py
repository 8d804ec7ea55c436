"""The ``ngffcore`` command line."""
