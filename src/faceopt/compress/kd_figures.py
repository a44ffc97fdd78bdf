"""The figures of the distillation half of page 07 (thesis section 1.3), drawn from a
:class:`faceopt.compress.kd_experiments.KDResult`."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from faceopt.compress.kd_experiments import KDResult, Run

__all__ = ["softened_distributions", "accuracy_against_temperature", "hint_learning_curves"]


def softened_distributions(softened: Mapping[float, Sequence[float]], label: int,
                           temperatures: Sequence[float] = (1.0, 4.0, 16.0)) -> plt.Figure:
    """Figure 1.6's analogue: the teacher's class probabilities for one test image at a few temperatures."""
    shown = [t for t in temperatures if t in softened] or list(softened)[:3]
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width = 0.8 / len(shown)
    classes = np.arange(len(next(iter(softened.values()))))
    for i, t in enumerate(shown):
        ax.bar(classes + (i - (len(shown) - 1) / 2) * width, softened[t], width, label=f"T = {t:g}")
    ax.set_xticks(classes)
    ax.set_xlabel(f"class (the image shows a {label})")
    ax.set_ylabel("probability")
    ax.set_title("the teacher's softmax at temperature T")
    ax.legend()
    fig.tight_layout()
    return fig


def _by_seed(runs: Sequence[Run], experiment: str, method: str, **settings: float) -> list[Run]:
    return [r for r in runs if r.experiment == experiment and r.method == method
            and all(r.settings.get(k) == v for k, v in settings.items())]


def accuracy_against_temperature(result: KDResult) -> plt.Figure:
    """Test accuracy (mean and standard error over seeds) of the KD students against T, one line per
    mixing weight alpha, with the hard-label student as a band."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    kd = [r for r in result.runs if r.experiment == "temperature" and r.method == "KD"]
    for alpha in sorted({r.settings["alpha"] for r in kd}):
        ts = sorted({r.settings["T"] for r in kd if r.settings["alpha"] == alpha})
        stats = [np.array([r.test_accuracy for r in _by_seed(kd, "temperature", "KD", T=t, alpha=alpha)]) for t in ts]
        means = [s.mean() for s in stats]
        errs = [s.std(ddof=1) / np.sqrt(len(s)) if len(s) > 1 else 0.0 for s in stats]
        ax.errorbar(ts, means, yerr=errs, marker="o", capsize=3, label=f"KD, alpha = {alpha:g}")
    hard = np.array([r.test_accuracy for r in _by_seed(result.runs, "temperature", "hard labels")])
    if len(hard):
        se = hard.std(ddof=1) / np.sqrt(len(hard)) if len(hard) > 1 else 0.0
        ax.axhspan(hard.mean() - se, hard.mean() + se, color="grey", alpha=0.3, label="hard labels (± s.e.)")
    ax.axvline(result.chosen["T"], color="black", ls=":", lw=1, label=f"chosen on validation (T = {result.chosen['T']:g})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("temperature T")
    ax.set_ylabel("test accuracy (last epoch)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def hint_learning_curves(result: KDResult, methods: Sequence[str] = ("plain", "KD", "hints then KD (FitNets)")
                         ) -> plt.Figure:
    """Validation accuracy per epoch of the FitNets comparison's students (mean over seeds; FitNets' hint
    epochs are shaded: the classifier is not trained then)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method in methods:
        curves = [r.curve.val_accuracy for r in _by_seed(result.runs, "fitnet", method) if r.curve.val_accuracy]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        mean = np.mean([c[:n] for c in curves], axis=0)
        epochs = np.arange(1, n + 1)  # FitNets' curve includes its hint epochs (the untrained top is scored then)
        ax.plot(epochs, mean, label=method)
    if result.preset.hint_epochs:
        ax.axvspan(0.5, result.preset.hint_epochs + 0.5, color="grey", alpha=0.15, label="FitNets' hint stage")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
