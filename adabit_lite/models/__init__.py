"""The model zoo: spiking-quantized networks built from adabit_lite layers.

``build_model(name, num_classes=..., in_channels=..., cfg=QuantConfig(...))`` builds any of
``MODEL_NAMES``.  ``cfg`` sets the initial W/S/T of every learned layer and what is learned; the
stem always keeps 8-bit weights and 8-bit signed spikes (layers.QuantConfig.stem).
"""

from __future__ import annotations

from torch import nn

from ..layers import QuantConfig
from .small import SmallCNN

MODELS = {"small-cnn": SmallCNN}
MODEL_NAMES = tuple(MODELS)


def build_model(name: str, *, num_classes: int = 10, in_channels: int = 1,
                cfg: QuantConfig = QuantConfig(), **kwargs) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; accepted: {', '.join(MODELS)}")
    return MODELS[name](num_classes=num_classes, in_channels=in_channels, cfg=cfg, **kwargs)
