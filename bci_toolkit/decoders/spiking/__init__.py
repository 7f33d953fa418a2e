"""Spiking decoder: send-on-delta spike encoding and a convolutional network of leaky
integrate-and-fire neurons trained with surrogate gradients (snnTorch neuron model)."""

from bci_toolkit.decoders.spiking.encoding import delta_decode, delta_encode
from bci_toolkit.decoders.spiking.estimator import SpikingClassifier

__all__ = ["SpikingClassifier", "delta_decode", "delta_encode"]
