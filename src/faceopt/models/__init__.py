"""Face embedding networks by name.

``get_model(name, **options)`` builds a randomly initialised network. Presets fix some
constructor arguments (for instance ``iresnet50`` fixes the depth and
``mobilefacenet_relu512`` the activation and embedding size); the remaining
arguments are the allowed options.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from faceopt.models.iresnet import iresnet
from faceopt.models.mobiface import MobiFace
from faceopt.models.mobilefacenet import MobileFaceNet
from faceopt.models.mobilenetv2 import mobilenetv2


@dataclass(frozen=True)
class _Spec:
    factory: Callable[..., nn.Module]
    preset: dict[str, Any] = field(default_factory=dict)

    @property
    def options(self) -> tuple[str, ...]:
        names = inspect.signature(self.factory).parameters
        return tuple(n for n in names if n not in self.preset)


_REGISTRY: dict[str, _Spec] = {
    "iresnet18": _Spec(iresnet, {"depth": 18}),
    "iresnet50": _Spec(iresnet, {"depth": 50}),
    "iresnet100": _Spec(iresnet, {"depth": 100}),
    "mobilefacenet": _Spec(MobileFaceNet),
    "mobilefacenet_relu512": _Spec(MobileFaceNet, {"act": "relu", "embedding_size": 512}),
    "mobilefacenet_insightface": _Spec(MobileFaceNet, {"embedding_size": 512, "width": 2}),
    "mobiface": _Spec(MobiFace),
    "mobiface_x3_swish_se": _Spec(MobiFace, {"width": 3, "act": "swish", "se_late": True}),
    # the thesis's student at its 9.11M parameters (see faceopt.models.mobiface): width 2, GDC head
    "mobiface_x2_swish_se_gdc": _Spec(MobiFace, {"width": 2, "act": "swish", "se_late": True, "head": "gdc"}),
    "mobilenetv2": _Spec(mobilenetv2),
}

MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def model_options(name: str) -> tuple[str, ...]:
    """The option names ``get_model(name, ...)`` accepts."""
    return _spec(name).options


def _spec(name: str) -> _Spec:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODEL_NAMES)}")
    return _REGISTRY[name]


def get_model(name: str, **options: Any) -> nn.Module:
    """Build the registered network ``name`` with the given constructor options."""
    spec = _spec(name)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for model {name!r}; allowed: {', '.join(spec.options)}"
        )
    return spec.factory(**spec.preset, **options)


__all__ = ["MODEL_NAMES", "get_model", "model_options"]
