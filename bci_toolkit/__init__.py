"""bci-toolkit: turn EEG into commands, offline and online, private by default."""

__version__ = "0.1.0"

__all__ = ["__version__"]
