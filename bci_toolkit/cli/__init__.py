"""The ``bci`` command line."""
