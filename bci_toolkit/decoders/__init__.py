"""Decoders: scikit-learn estimators behind a name → class registry, saved as artifacts."""

from bci_toolkit.decoders.registry import (
    DecoderContext,
    get_decoder_class,
    list_decoders,
    make_decoder,
    register,
)

__all__ = ["DecoderContext", "get_decoder_class", "list_decoders", "make_decoder", "register"]
