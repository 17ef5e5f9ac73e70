"""The model zoo: spiking-quantized networks built from adabit_lite layers.

``build_model(name, num_classes=..., in_channels=..., cfg=QuantConfig(...))`` builds any of
``MODEL_NAMES``.  ``cfg`` sets the initial W/S/T of every learned layer and what is learned; the
stem always keeps 8-bit weights and 8-bit signed spikes (layers.QuantConfig.stem).
``event-cnn`` (models/temporal.py) takes event data [B, T, C, H, W] and the extra options
``frames`` (T, fixed by the data) and ``time_average_input``.
"""

from __future__ import annotations

from torch import nn

from ..layers import QuantConfig
from .resnet import resnet8, resnet18, resnet19, resnet20
from .sew import sew_resnet34
from .small import SmallCNN
from .spikformer import spikformer_2_384, spikformer_4_256, spikformer_4_384
from .temporal import EventCNN

MODELS = {"small-cnn": SmallCNN, "resnet8": resnet8, "resnet20": resnet20, "resnet19": resnet19, "resnet18": resnet18,
          "sew-resnet34": sew_resnet34, "spikformer-4-384": spikformer_4_384,
          "spikformer-4-256": spikformer_4_256, "spikformer-2-384": spikformer_2_384,
          "event-cnn": EventCNN}
MODEL_NAMES = tuple(MODELS)


def build_model(name: str, *, num_classes: int = 10, in_channels: int = 1,
                cfg: QuantConfig = QuantConfig(), **kwargs) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; accepted: {', '.join(MODELS)}")
    return MODELS[name](num_classes=num_classes, in_channels=in_channels, cfg=cfg, **kwargs)
