"""Deep ConvNet decoders built on braindecode: ShallowConvNet, Deep4, EEGNet.

Importing this package imports torch; the decoder registry imports it lazily, only when a
pipeline names one of these decoders.
"""

from bci_toolkit.decoders.deep.estimator import DeepEpochClassifier
from bci_toolkit.decoders.deep.models import Deep4, EEGNet, ShallowConvNet

__all__ = ["Deep4", "DeepEpochClassifier", "EEGNet", "ShallowConvNet"]
