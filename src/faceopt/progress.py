"""Progress bars that show in interactive notebooks and stay silent under CI, nbval and papermill."""
from __future__ import annotations

import warnings
from typing import Iterable, TypeVar

from faceopt.config import quiet

T = TypeVar("T")


def progress(items: Iterable[T], desc: str = "", total: int | None = None) -> Iterable[T]:
    """Wrap ``items`` in a tqdm bar (widget in Jupyter/Colab), or return them unchanged when quiet."""
    if quiet():
        return items
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm.auto warns when ipywidgets is absent and falls back to text
        from tqdm.auto import tqdm
    return tqdm(items, desc=desc, total=total)
