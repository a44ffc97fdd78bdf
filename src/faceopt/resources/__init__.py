"""Files the chapters read, shipped inside the package so that an installed faceopt finds them.

A checkout, an editable install and a plain ``pip install`` (Google Colab) all see the
same files here:

* ``claims.yml``: every quantitative claim of the thesis (the scorecard's rows);
* ``runs/person_detector/``: our SSDlite-MobileNetV2 vtest person detector and its summary;
* ``runs/margin_distillation/``: the cached full-scale MarginDistillation trainings;
* ``runs/device_tiers/``: the cached device-tier trainings (records and first-seed weights);
* ``annotations/vtest_persons.json``: the person pseudo-labels of ``vtest.avi``.

With an editable install this folder is ``src/faceopt/resources`` of the checkout, which is
where maintainers regenerate these files.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["resource_path", "resources_root"]


def resources_root() -> Path:
    """The folder of the packaged resources, as a filesystem path."""
    root = files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(
            f"faceopt's resources are inside an archive ({root}); install faceopt as a folder "
            "(`pip install faceopt`, not a zip import) so that chapters can read them"
        )
    return root


def resource_path(*parts: str, must_exist: bool = True) -> Path:
    """The packaged file or folder ``parts`` (e.g. ``resource_path("runs", "margin_distillation")``).

    Raises ``FileNotFoundError`` naming the missing resource and how to get it back when
    ``must_exist`` is true (the default); a folder that a command is about to create is
    asked for with ``must_exist=False``.
    """
    path = resources_root().joinpath(*parts)
    if must_exist and not path.exists():
        name = "/".join(parts)
        raise FileNotFoundError(
            f"{path}: packaged resource {name!r} is missing; in a checkout restore it with "
            f"`git checkout -- src/faceopt/resources/{name}`, otherwise reinstall faceopt "
            "(`pip install --force-reinstall faceopt`, or `pip install .` from the checkout)"
        )
    return path
