"""ShallowConvNet, Deep4 and EEGNet as scikit-learn decoders.

Each class wraps one braindecode model (``ShallowFBCSPNet``, ``Deep4Net``, ``EEGNet``)
behind :class:`~bci_toolkit.decoders.deep.estimator.DeepEpochClassifier`. Signal
dimensions follow braindecode's uniform signature (``n_chans``, ``n_outputs``,
``n_times``, ``sfreq``) and are filled from the data by the decoder registry; the
architecture and training parameters come from the pipeline's ``decoder.params``.

Architecture lengths are in samples, as in braindecode (whose defaults were designed
for 250 Hz ShallowConvNet/Deep4 and 128 Hz EEGNet), or in seconds through the ``<name>_s``
parameters, which scale with the data's sampling rate.
"""

from __future__ import annotations

from typing import Any

import torch

from bci_toolkit.decoders.base import store_init_params
from bci_toolkit.decoders.deep.estimator import DeepEpochClassifier

_COMMON_DOC = """
    n_chans, n_outputs, n_times, sfreq, ch_names
        Signal description, filled from the data by the registry. ``n_chans``/``n_times``
        are checked against ``X`` when given; the model gets one output per class in ``y``.
    max_epochs : int
        Upper bound on training epochs.
    batch_size : int
        Mini-batch size (capped at the number of training trials).
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay.
    lr_schedule : {"cosine", "constant"}
        Cosine annealing over ``max_epochs`` (braindecode's default recipe) or none.
    patience : int | None
        Early stopping: epochs without a lower validation loss before training stops; the
        best weights are restored. ``None`` trains for ``max_epochs``.
    min_epochs : int
        Warm-up before early stopping watches the validation loss (Keras'
        ``start_from_epoch``): the weights of an untrained network are never restored.
    valid_fraction : float
        Stratified share of the training trials held out for early stopping (``0``: none).
    pooled_early_stopping : bool
        Whether early stopping is used when ``fit`` pools subjects (``groups`` given; it
        then holds out whole subjects). ``False`` (default) trains on every subject for
        ``max_epochs`` under the learning-rate schedule, as braindecode's cross-subject
        examples do: with a handful of subjects, the loss of the one or two held out
        tracks how decodable those people are more than how well the model transfers
        (on EEGMMIDB S001-S010 it cost EEGNet and Deep4 0.06-0.15 ROC-AUC after
        fine-tuning). Fine-tuning and single-subject fits are not affected.
    alignment : {"none", "euclidean"}
        ``"euclidean"``: whiten trials by the inverse square root of their mean spatial
        covariance before standardisation (Euclidean alignment, He & Wu 2020); per
        subject when ``fit`` gets ``groups``. Helps cross-subject transfer.
    alignment_scope : {"always", "pooled"}
        ``"pooled"`` aligns only fits that pool subjects (``groups`` given) and the
        fine-tuned copies of such models; a single-subject fit from scratch is not
        aligned. For models (EEGNet) that transfer better aligned but learn one subject
        worse from aligned trials. Fine-tuning always keeps what the model was trained
        with.
    augmentation : str | list of str | None
        Names from :data:`bci_toolkit.decoders.deep.augment.AUGMENTATIONS`.
    augmentation_prob : float
        Probability with which each transform is applied to a batch.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        ``"auto"`` trains and predicts on CUDA when present, else on the CPU.
    n_threads : int | None
        Torch intra-op threads on CPU; ``None`` follows ``OMP_NUM_THREADS`` or uses every
        CPU available to the process.
    live_runtime : {"torch", "onnx"}
        What runs single live windows (:meth:`predict_proba_single`): the frozen torch
        module, or the same graph exported to ONNX and run by onnxruntime (built in
        memory on the first window; several times faster on small CPUs). Training and
        batch prediction always use torch.
    pretrained : str | None
        Artifact folder of the same decoder (e.g. trained on other subjects) to start
        from; ``fit`` then fine-tunes it.
    finetune_lr : float | None
        Learning rate when fine-tuning (``fit`` with ``pretrained``, or
        :meth:`fine_tune`); ``None`` means ``lr / 10``.
    finetune_epochs : int | None
        Epoch budget when fine-tuning; ``None`` means ``max_epochs``.
    random_state : int | None
        Seeds weights, batch order, dropout, augmentation and the validation split.
    verbose : int
        skorch's per-epoch log when > 0.
"""



class ShallowConvNet(DeepEpochClassifier):
    __doc__ = """ShallowFBCSPNet (Schirrmeister et al. 2017): temporal + spatial convolution,
    squaring, mean pooling, log: a learned filter-bank CSP.

    Parameters
    ----------
    n_filters_time, filter_time_length, n_filters_spat, pool_time_length, pool_time_stride,
    final_conv_length, drop_prob
        braindecode's ``ShallowFBCSPNet`` arguments.
    filter_time_length_s, pool_time_length_s, pool_time_stride_s : float | None
        The same lengths in seconds (they then win over the lengths in samples), turned
        into samples at the data's rate: one spec keeps the kernel durations on any
        dataset. At 160 Hz, braindecode's 25/75/15 samples are 0.15625/0.46875/0.09375 s.
    cropped : bool
        Cropped (dense) decoding: the network emits one prediction per receptive field
        position and the loss averages them, which multiplies the training signal per trial.
        With ``final_conv_length="auto"`` the receptive field is about half the window.
        A cropped model predicts on any window at least one receptive field long.
    """ + _COMMON_DOC

    module_name = "ShallowFBCSPNet"
    arch_params = ("n_filters_time", "filter_time_length", "n_filters_spat",
                   "pool_time_length", "pool_time_stride", "final_conv_length", "drop_prob")
    seconds_params = {"filter_time_length": "filter_time_length_s",
                      "pool_time_length": "pool_time_length_s",
                      "pool_time_stride": "pool_time_stride_s"}
    supports_cropped = True

    def __init__(self, n_chans: int | None = None, n_outputs: int | None = None,
                 n_times: int | None = None, sfreq: float | None = None,
                 ch_names: list[str] | None = None, *,
                 n_filters_time: int = 40, filter_time_length: int = 25,
                 n_filters_spat: int = 40, pool_time_length: int = 75,
                 pool_time_stride: int = 15, final_conv_length: int | str = "auto",
                 filter_time_length_s: float | None = None,
                 pool_time_length_s: float | None = None,
                 pool_time_stride_s: float | None = None,
                 drop_prob: float = 0.5, cropped: bool = False,
                 max_epochs: int = 60, batch_size: int = 16, lr: float = 1e-3,
                 weight_decay: float = 0.0, lr_schedule: str = "cosine",
                 patience: int | None = 15, min_epochs: int = 10,
                 valid_fraction: float = 0.2, pooled_early_stopping: bool = False,
                 alignment: str = "none", alignment_scope: str = "always",
                 augmentation: str | list[str] | None = None, augmentation_prob: float = 0.5,
                 device: str = "auto", n_threads: int | None = None,
                 live_runtime: str = "torch",
                 pretrained: str | None = None, finetune_lr: float | None = None,
                 finetune_epochs: int | None = None, random_state: int | None = 42,
                 verbose: int = 0) -> None:
        # scikit-learn's contract: store every constructor argument unchanged, under
        # its own name (the signature above is the parameter list get_params reads).
        store_init_params(self, locals())

    def _module_kwargs(self, n_times: int) -> dict[str, Any]:
        kwargs = super()._module_kwargs(n_times)
        if self.cropped and self.final_conv_length == "auto":
            # Receptive field = filter + pool + stride * (final - 1) - 1 samples; aim at
            # half the window so each trial yields many crops.
            target = n_times // 2
            k = round((target - kwargs["filter_time_length"] - kwargs["pool_time_length"] + 1)
                      / kwargs["pool_time_stride"]) + 1
            kwargs["final_conv_length"] = max(int(k), 1)
        return kwargs

    def _after_build(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.cropped:
            module.to_dense_prediction_model()
        return module


class Deep4(DeepEpochClassifier):
    __doc__ = """Deep4Net (Schirrmeister et al. 2017): four conv-pool blocks.

    Parameters
    ----------
    n_filters_time, n_filters_spat, filter_time_length, pool_time_length,
    pool_time_stride, n_filters_2, filter_length_2, n_filters_3, filter_length_3,
    n_filters_4, filter_length_4, final_conv_length, drop_prob
        braindecode's ``Deep4Net`` arguments. ``filter_time_length_s`` and
        ``filter_length_2_s``...``filter_length_4_s`` give the convolution lengths in
        seconds instead (at 160 Hz, braindecode's 10 samples are 0.0625 s); they become
        samples at the data's rate. Four max-pools of stride
        ``pool_time_stride`` shrink time 81-fold with the defaults; braindecode pads
        short inputs, but windows shorter than about 2 s at 160 Hz leave the last blocks
        with almost nothing to see.
    """ + _COMMON_DOC

    module_name = "Deep4Net"
    arch_params = ("n_filters_time", "n_filters_spat", "filter_time_length",
                   "pool_time_length", "pool_time_stride", "n_filters_2", "filter_length_2",
                   "n_filters_3", "filter_length_3", "n_filters_4", "filter_length_4",
                   "final_conv_length", "drop_prob")
    seconds_params = {"filter_time_length": "filter_time_length_s",
                      "filter_length_2": "filter_length_2_s",
                      "filter_length_3": "filter_length_3_s",
                      "filter_length_4": "filter_length_4_s"}
    cropped = False

    def __init__(self, n_chans: int | None = None, n_outputs: int | None = None,
                 n_times: int | None = None, sfreq: float | None = None,
                 ch_names: list[str] | None = None, *,
                 n_filters_time: int = 25, n_filters_spat: int = 25,
                 filter_time_length: int = 10, pool_time_length: int = 3,
                 pool_time_stride: int = 3, n_filters_2: int = 50, filter_length_2: int = 10,
                 n_filters_3: int = 100, filter_length_3: int = 10, n_filters_4: int = 200,
                 filter_length_4: int = 10, final_conv_length: int | str = "auto",
                 filter_time_length_s: float | None = None,
                 filter_length_2_s: float | None = None,
                 filter_length_3_s: float | None = None,
                 filter_length_4_s: float | None = None,
                 drop_prob: float = 0.5,
                 max_epochs: int = 60, batch_size: int = 16, lr: float = 1e-3,
                 weight_decay: float = 5e-4, lr_schedule: str = "cosine",
                 patience: int | None = 15, min_epochs: int = 10,
                 valid_fraction: float = 0.2, pooled_early_stopping: bool = False,
                 alignment: str = "none", alignment_scope: str = "always",
                 augmentation: str | list[str] | None = None, augmentation_prob: float = 0.5,
                 device: str = "auto", n_threads: int | None = None,
                 live_runtime: str = "torch",
                 pretrained: str | None = None, finetune_lr: float | None = None,
                 finetune_epochs: int | None = None, random_state: int | None = 42,
                 verbose: int = 0) -> None:
        # scikit-learn's contract: store every constructor argument unchanged, under
        # its own name (the signature above is the parameter list get_params reads).
        store_init_params(self, locals())


class EEGNet(DeepEpochClassifier):
    __doc__ = """EEGNet (Lawhern et al. 2018): temporal conv, depthwise spatial conv,
    separable conv; a few thousand weights.

    Parameters
    ----------
    F1, D, F2, kernel_length, depthwise_kernel_length, pool1_kernel_size,
    pool2_kernel_size, drop_prob
        braindecode's ``EEGNet`` arguments (``F2=None`` means ``F1 * D``). Time shrinks by
        ``pool1_kernel_size * pool2_kernel_size`` (32 by default), so windows need at
        least that many samples.
    kernel_length_s, depthwise_kernel_length_s : float | None
        The temporal and separable kernel lengths in seconds (they then win over the
        lengths in samples; the paper's 0.5 s and 0.125 s), turned into samples at the
        data's rate.
    batch_norm_momentum : float
        PyTorch momentum of the batch-norm running statistics. braindecode's default
        (0.01) mirrors Keras' 0.99 decay, which needs hundreds of updates to settle; a
        subject's few dozen trials give two or three updates per epoch, so evaluation-mode
        predictions would use statistics still close to their initial values. 0.1 is
        PyTorch's default and what ShallowConvNet and Deep4 use.
    """ + _COMMON_DOC

    module_name = "EEGNet"
    arch_params = ("F1", "D", "F2", "kernel_length", "depthwise_kernel_length",
                   "pool1_kernel_size", "pool2_kernel_size", "drop_prob", "batch_norm_momentum")
    seconds_params = {"kernel_length": "kernel_length_s",
                      "depthwise_kernel_length": "depthwise_kernel_length_s"}
    cropped = False

    def __init__(self, n_chans: int | None = None, n_outputs: int | None = None,
                 n_times: int | None = None, sfreq: float | None = None,
                 ch_names: list[str] | None = None, *,
                 F1: int = 8, D: int = 2, F2: int | None = None,  # noqa: N803 - paper names
                 kernel_length: int = 64, depthwise_kernel_length: int = 16,
                 pool1_kernel_size: int = 4, pool2_kernel_size: int = 8,
                 kernel_length_s: float | None = None,
                 depthwise_kernel_length_s: float | None = None,
                 drop_prob: float = 0.25, batch_norm_momentum: float = 0.1,
                 max_epochs: int = 60, batch_size: int = 16, lr: float = 1e-3,
                 weight_decay: float = 0.0, lr_schedule: str = "cosine",
                 patience: int | None = 15, min_epochs: int = 10,
                 valid_fraction: float = 0.2, pooled_early_stopping: bool = False,
                 alignment: str = "none", alignment_scope: str = "always",
                 augmentation: str | list[str] | None = None, augmentation_prob: float = 0.5,
                 device: str = "auto", n_threads: int | None = None,
                 live_runtime: str = "torch",
                 pretrained: str | None = None, finetune_lr: float | None = None,
                 finetune_epochs: int | None = None, random_state: int | None = 42,
                 verbose: int = 0) -> None:
        # scikit-learn's contract: store every constructor argument unchanged, under
        # its own name (the signature above is the parameter list get_params reads).
        store_init_params(self, locals())
