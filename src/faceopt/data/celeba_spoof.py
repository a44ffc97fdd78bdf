"""CelebA-Spoof (Zhang et al., ECCV 2020) in its published layout, as a torch Dataset of face crops.

What this reader relies on (the dataset's README and its intra-test code ``intra_dataset_code/client.py``
in github.com/ZhangYuanhan-AI/CelebA-Spoof, checked against the stored copies of both)::

    CelebA_Spoof/Data/{train,test}/<subject id>/{live,spoof}/<image>.jpg|png
    CelebA_Spoof/Data/.../<image>_BB.txt            one line "x y w h score" per image
    CelebA_Spoof/metas/intra_test/{train,test}_label.json
    CelebA_Spoof/metas/intra_test/{train,test}_label.txt   (fallback: "relative/path label" lines)

* The label JSON maps a path relative to ``CelebA_Spoof/`` (e.g. ``"Data/train/4980/spoof/000001.jpg"``)
  to 44 integers: ``[0:40]`` the 40 CelebA face attributes, ``[40]`` the spoof type (:data:`SPOOF_TYPES`:
  0 live, 1 photo, 2 poster, 3 A4, 4 face mask, 5 upper-body mask, 6 region mask, 7 PC, 8 pad, 9 phone,
  10 3D mask), ``[41]`` the illumination (0 live, 1 normal, 2 strong, 3 back, 4 dark), ``[42]`` the
  environment (0 live, 1 indoor, 2 outdoor) and ``[43]`` the live/spoof label. The README's table gives
  the first four; that ``[43]`` is 0 for live and 1 for spoof comes from ``client.py``, which takes the
  bona fide scores from entries with ``[43] == 0``.
* The box file lies beside its image (``client.py`` opens ``image_path[:-4] + "_BB.txt"``); its first line
  is ``x y w h score`` on a 224 x 224 scale of the image, so ``x`` and ``w`` are multiplied by
  ``width / 224`` and ``y`` and ``h`` by ``height / 224``. ``client.py`` truncates the values to integers
  before and after scaling and clips the box to the image (negative ``x``, ``y`` become 0); here the scaled
  box stays in floats and the crop rounds outwards, so a crop may hold a pixel more on each side.
* The txt files hold ``path label`` lines with the same 0 live / 1 spoof label (their form is that of the
  loaders we know of, not documented by the README); they carry no spoof type, so a spoof image read from
  them has the spoof type :data:`UNKNOWN_SPOOF_TYPE` (-1).

Checks. Every listed path must stay inside the root (:func:`~faceopt.data.errors.check_listed_path`);
a label vector must have 44 integers, a label 0 or 1, a spoof type 0-10, and type 0 exactly when the
label is 0; a path under a ``live`` or ``spoof`` folder must carry that label. Illumination and
environment are only required to be integers (the reader does not use them). A box must be five finite
numbers with positive width and height whose scaled box overlaps the image; a box that reaches past the
image border is clipped, as ``client.py`` does. Any failure raises
:class:`~faceopt.data.errors.DataFileError` naming the file and the fix.

Output. ``dataset[i]`` is ``(image, label, spoof_type)``: ``image`` RGB float ``[3, size, size]`` in
[-1, 1] (:func:`~faceopt.data.recordio.image_to_tensor`, the input of every face model here), ``label``
0 live / 1 spoof, ``spoof_type`` as above. With ``crop=True`` the face box is widened by ``margin`` times
its width (left and right) and height (top and bottom), clipped to the image and resized to
``size x size`` without keeping the aspect ratio (as the official code resizes its crops); the default
``margin=0.2`` keeps some context around the face (the medium's edges and moiré are cues of an attack),
``margin=0`` is the official crop.
"""
from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from faceopt.data.errors import DataFileError, check_listed_path, read_text_file
from faceopt.data.images import DEFAULT_MAX_IMAGE_PIXELS, decode_image, encoded_image_size
from faceopt.data.recordio import image_to_tensor

__all__ = [
    "ATTACK_FAMILIES",
    "BOX_SCALE",
    "ENVIRONMENTS",
    "ILLUMINATIONS",
    "LABEL_LENGTH",
    "SPOOF_TYPES",
    "UNKNOWN_SPOOF_TYPE",
    "CelebASpoof",
    "FaceBox",
    "SpoofRecord",
    "attack_family",
    "box_file_of",
    "crop_face",
    "read_box_file",
    "scale_box",
]

#: Spoof type (index 40 of a label vector) -> name, as in the CelebA-Spoof README.
SPOOF_TYPES: dict[int, str] = {0: "live", 1: "photo", 2: "poster", 3: "A4", 4: "face mask", 5: "upper body mask",
                               6: "region mask", 7: "PC", 8: "pad", 9: "phone", 10: "3D mask"}
#: Illumination condition (index 41) -> name.
ILLUMINATIONS: dict[int, str] = {0: "live", 1: "normal", 2: "strong", 3: "back", 4: "dark"}
#: Environment (index 42) -> name.
ENVIRONMENTS: dict[int, str] = {0: "live", 1: "indoor", 2: "outdoor"}
#: Spoof type of a spoof image read from a txt label file, which carries no type.
UNKNOWN_SPOOF_TYPE = -1
#: Attack families: print (paper), replay (screens), mask. Types 4-6 are paper masks cut from prints (the paper
#: calls them "paper cut"); they are grouped with the 3D mask because all of them are worn or held as a face-shaped
#: object, whereas print attacks are flat sheets held up to the camera.
ATTACK_FAMILIES: dict[str, tuple[int, ...]] = {"live": (0,), "print": (1, 2, 3), "replay": (7, 8, 9), "mask": (4, 5, 6, 10)}
#: Length of a label vector, and the positions in it.
LABEL_LENGTH = 44
_TYPE, _ILLUMINATION, _ENVIRONMENT, _LABEL = 40, 41, 42, 43
#: The side of the square the box files are given on.
BOX_SCALE = 224.0
_HEADER_BYTES = 1 << 16
_FAMILY_OF = {t: family for family, types in ATTACK_FAMILIES.items() for t in types}


def attack_family(spoof_type: int) -> str:
    """``"live"`` for type 0, else the family of a spoof type: ``"print"`` (photo, poster, A4), ``"replay"``
    (PC, pad, phone) or ``"mask"`` (face, upper-body, region and 3D mask); see :data:`ATTACK_FAMILIES`."""
    if isinstance(spoof_type, bool):
        raise ValueError(f"spoof_type must be an integer 0-10, got {spoof_type!r}")
    try:
        t = operator.index(spoof_type)
    except TypeError:
        raise ValueError(f"spoof_type must be an integer 0-10, got {spoof_type!r}") from None
    if t not in _FAMILY_OF:
        raise ValueError(f"spoof_type {t} is not a CelebA-Spoof spoof type; they are {SPOOF_TYPES}")
    return _FAMILY_OF[t]


class FaceBox(NamedTuple):
    """A face box ``x, y`` (top-left), ``w, h`` and the detector's score."""

    x: float
    y: float
    w: float
    h: float
    score: float


@dataclass(frozen=True, slots=True)
class SpoofRecord:
    """One listed image. ``box`` and ``image_size`` are ``None`` when the dataset was built with
    ``check_files=False`` (then they are read when the image is loaded)."""

    path: Path  #: the image file
    name: str  #: the path as listed, relative to the CelebA_Spoof folder
    entry: int  #: its entry number in the label file (1-based; the line number of a txt file)
    subject: str  #: the subject id folder ("" if the path has no Data/<split>/<subject>/ form)
    label: int  #: 0 live, 1 spoof
    spoof_type: int  #: :data:`SPOOF_TYPES` index, or :data:`UNKNOWN_SPOOF_TYPE`
    illumination: int | None  #: :data:`ILLUMINATIONS` index (None from a txt file)
    environment: int | None  #: :data:`ENVIRONMENTS` index (None from a txt file)
    box_224: FaceBox | None  #: the box as in the _BB.txt file (224 x 224 scale)
    box: FaceBox | None  #: the box in pixels of the image
    image_size: tuple[int, int] | None  #: (width, height) from the image's header

    @property
    def spoof_type_name(self) -> str:
        return SPOOF_TYPES.get(self.spoof_type, "unknown spoof")

    @property
    def box_file(self) -> Path:
        return box_file_of(self.path)


def box_file_of(image: str | os.PathLike) -> Path:
    """``<image>_BB.txt`` beside ``<image>.jpg|png``."""
    p = Path(image)
    return p.with_name(p.stem + "_BB.txt")


# --------------------------------------------------------------------------- boxes


def read_box_file(path: str | os.PathLike, image: str | os.PathLike | None = None) -> FaceBox:
    """The box of a ``_BB.txt`` file, on its 224 x 224 scale: its first line ``x y w h score``.

    A missing file, a line that is not five finite numbers, or a width or height that is not positive
    raises :class:`DataFileError`; ``image`` is named in the message when given.
    """
    path = Path(path)
    of = f" of {image}" if image is not None else ""
    form = ("every CelebA-Spoof image has a <image>_BB.txt beside it whose first line is 'x y w h score' "
            f"on the {BOX_SCALE:g}x{BOX_SCALE:g} scale")
    try:
        text = read_text_file(path, form)
    except FileNotFoundError:
        raise DataFileError(f"{path}: the bounding-box file{of} is missing; {form}. Restore it from the dataset "
                            "archive, or remove the image from the label file") from None
    lines = text.splitlines()
    line = lines[0].strip() if lines else ""
    fields = line.split()
    try:
        values = [float(f) for f in fields]
    except ValueError:
        values = []
    if len(values) != 5 or not all(math.isfinite(v) for v in values):
        raise DataFileError(f"{path}: bad bounding-box line {line[:80]!r}{of}; expected five numbers 'x y w h score', "
                            f"{form}. Restore the file from the dataset archive")
    box = FaceBox(*values)
    if box.w <= 0 or box.h <= 0:
        raise DataFileError(f"{path}: the box{of} has width {box.w:g} and height {box.h:g}; both must be positive "
                            "(the line is 'x y w h score'). Restore the file from the dataset archive")
    return box


def scale_box(box_224: FaceBox, width: int, height: int, where: str = "box") -> FaceBox:
    """The box in pixels of a ``width x height`` image: ``x, w`` times ``width/224``, ``y, h`` times ``height/224``.

    A box that does not overlap the image at all raises :class:`DataFileError` naming ``where``; one that
    reaches past the border is kept (the crop clips it).
    """
    sx, sy = width / BOX_SCALE, height / BOX_SCALE
    box = FaceBox(box_224.x * sx, box_224.y * sy, box_224.w * sx, box_224.h * sy, box_224.score)
    if not all(math.isfinite(v) for v in box):
        raise DataFileError(f"{where}: the box {tuple(box_224[:4])} on the {BOX_SCALE:g} scale overflows when scaled to "
                            f"the {width}x{height} image; restore the box file from the dataset archive")
    if box.x >= width or box.y >= height or box.x + box.w <= 0 or box.y + box.h <= 0:
        raise DataFileError(f"{where}: the box {tuple(round(v, 1) for v in box_224[:4])} on the {BOX_SCALE:g} scale is "
                            f"({box.x:.1f}, {box.y:.1f}, {box.w:.1f}, {box.h:.1f}) in the {width}x{height} image and lies "
                            "wholly outside it; the box file does not belong to this image. Restore the pair from "
                            "the dataset archive")
    return box


def crop_face(image: NDArray[np.uint8], box: FaceBox, margin: float = 0.2) -> NDArray[np.uint8]:
    """The part of ``image`` [H, W, C] inside ``box`` (pixels) widened by ``margin * w`` left and right and
    ``margin * h`` above and below, rounded outwards and clipped to the image."""
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0 (a share of the box's size), got {margin!r}")
    height, width = image.shape[:2]
    x0 = max(0, math.floor(box.x - margin * box.w))
    y0 = max(0, math.floor(box.y - margin * box.h))
    x1 = min(width, math.ceil(box.x + box.w * (1 + margin)))
    y1 = min(height, math.ceil(box.y + box.h * (1 + margin)))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {tuple(box[:4])} does not overlap the {width}x{height} image")
    return np.ascontiguousarray(image[y0:y1, x0:x1])


# --------------------------------------------------------------------------- label files


class _Entry(NamedTuple):
    name: str
    entry: int
    label: int
    spoof_type: int
    illumination: int | None
    environment: int | None
    attributes: tuple[int, ...] | None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_label(where: str, name: str, label: int, spoof_type: int) -> None:
    if label not in (0, 1):
        raise DataFileError(f"{where}: label {label} of {name!r}; the live/spoof label is 0 (live) or 1 (spoof)")
    if (label == 0) != (spoof_type == 0) and spoof_type != UNKNOWN_SPOOF_TYPE:
        raise DataFileError(f"{where}: {name!r} has label {label} ({'live' if label == 0 else 'spoof'}) but spoof type "
                            f"{spoof_type} ({SPOOF_TYPES[spoof_type]}); a live image has type 0 and a spoof image 1-10. "
                            "The file is corrupt: restore it from the dataset archive")
    parts = name.replace("\\", "/").split("/")
    folder = parts[-2] if len(parts) >= 2 else ""
    if folder in ("live", "spoof") and folder != ("live" if label == 0 else "spoof"):
        raise DataFileError(f"{where}: {name!r} lies in a {folder!r} folder but has label {label} "
                            f"({'live' if label == 0 else 'spoof'}); the label file and the folders disagree. "
                            "Restore the label file from the dataset archive")


def _read_json_labels(path: Path) -> list[_Entry]:
    text = read_text_file(path, "a CelebA-Spoof label file is UTF-8 JSON")
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise DataFileError(f"{path}: the image {e.key!r} is listed twice; each path is listed once. Restore the file "
                            "from the dataset archive") from None
    except json.JSONDecodeError as e:
        raise DataFileError(f"{path}: invalid JSON ({e}); restore the label file from the dataset archive") from None
    except (RecursionError, ValueError) as e:
        raise DataFileError(f"{path}: unreadable JSON ({type(e).__name__}); a label file is one flat object "
                            "mapping image paths to lists of 44 integers") from None
    if not isinstance(obj, dict):
        raise DataFileError(f"{path}: expected a JSON object mapping image paths to lists of {LABEL_LENGTH} integers, "
                            f"got a {type(obj).__name__}")
    entries: list[_Entry] = []
    for number, (name, vector) in enumerate(obj.items(), 1):
        where = f"{path} (entry {number})"
        if not isinstance(vector, list) or len(vector) != LABEL_LENGTH or not all(_is_int(v) for v in vector):
            got = (f"{len(vector)} values" if isinstance(vector, list) else type(vector).__name__)
            raise DataFileError(f"{where}: {name!r} maps to {got}; every image maps to a list of {LABEL_LENGTH} integers "
                                "(40 face attributes, spoof type, illumination, environment, live/spoof label). "
                                "Use the label file of the dataset archive")
        spoof_type = vector[_TYPE]
        if spoof_type not in SPOOF_TYPES:
            raise DataFileError(f"{where}: {name!r} has spoof type {spoof_type} (index {_TYPE}); spoof types are 0-10: "
                                f"{SPOOF_TYPES}")
        _check_label(where, name, vector[_LABEL], spoof_type)
        entries.append(_Entry(name, number, vector[_LABEL], spoof_type, vector[_ILLUMINATION], vector[_ENVIRONMENT],
                              tuple(vector[:_TYPE])))
    return entries


def _read_txt_labels(path: Path) -> list[_Entry]:
    text = read_text_file(path, "a CelebA-Spoof label list is UTF-8 text of 'relative/path label' lines")
    entries: list[_Entry] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in ("0", "1"):
            raise DataFileError(f"{path}:{lineno}: expected 'relative/path label' with label 0 (live) or 1 (spoof), "
                                f"got {line[:80]!r}")
        name, label = parts[0], int(parts[1])
        if name in seen:
            raise DataFileError(f"{path}:{lineno}: {name!r} is listed twice; each path is listed once")
        seen.add(name)
        spoof_type = 0 if label == 0 else UNKNOWN_SPOOF_TYPE
        _check_label(f"{path}:{lineno}", name, label, spoof_type)
        entries.append(_Entry(name, lineno, label, spoof_type, None, None, None))
    return entries


# --------------------------------------------------------------------------- the dataset


def _image_size(path: Path, where: str, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image's header, reading only its start when that suffices."""
    if not path.is_file():
        raise DataFileError(f"{where} lists {path}, which is missing or not a file; restore it from the dataset archive "
                            "or pass the CelebA_Spoof folder that holds Data/ and metas/ as root")
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_BYTES)
            size = encoded_image_size(head)
            if size is None:
                head += f.read()
                size = encoded_image_size(head)
    except FileNotFoundError:
        raise DataFileError(f"{where} lists {path}, which is missing; restore it from the dataset archive or "
                            "pass the CelebA_Spoof folder that holds Data/ and metas/ as root") from None
    if size is None:
        raise DataFileError(f"{path} (listed in {where}) is not a readable JPEG or PNG image: its width and height "
                            "cannot be read from its header; restore it from the dataset archive")
    w, h = size
    if w < 1 or h < 1 or w * h > max_pixels:
        raise DataFileError(f"{path} (listed in {where}) declares a {w}x{h} image; the cap is {max_pixels} pixels "
                            "(max_image_pixels), so it is corrupt or a decompression bomb")
    return w, h


def _locate_root(root: Path) -> Path:
    """``root`` itself, or its ``CelebA_Spoof`` folder when ``root`` is the folder above it."""
    if not (root / "metas").is_dir() and (root / "CelebA_Spoof" / "metas").is_dir():
        return root / "CelebA_Spoof"
    return root


class CelebASpoof(Dataset):
    """CelebA-Spoof images as ``(image [3, size, size] in [-1, 1], label 0 live / 1 spoof, spoof type)``.

    ``root`` is the ``CelebA_Spoof`` folder (holding ``Data/`` and ``metas/``) or the folder above it.
    The labels come from ``metas/intra_test/<split>_label.json``, or ``<split>_label.txt`` when there
    is no JSON (then spoof images have type :data:`UNKNOWN_SPOOF_TYPE`), or from ``label_file``
    (e.g. a protocol list in the same form). ``spoof_types`` keeps only those types (needs the JSON);
    ``limit`` keeps that many records spread evenly over the sorted paths (a deterministic subset
    for smoke runs). With ``check_files=True`` every image header and box file is read now, so
    ``records`` carry boxes and a broken file is reported at once; ``False`` defers that to loading
    (for the full 625k images). See the module docstring for the format, checks and crop.
    """

    def __init__(self, root: str | os.PathLike, split: Literal["train", "test"] = "train", size: int = 224, *,
                 crop: bool = True, margin: float = 0.2, label_file: str | os.PathLike | None = None,
                 spoof_types: Iterable[int] | None = None, limit: int | None = None, check_files: bool = True,
                 max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if int(size) != size or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if not math.isfinite(margin) or margin < 0:
            raise ValueError(f"margin must be a finite number >= 0 (a share of the box's size), got {margin!r}")
        if limit is not None and (int(limit) != limit or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
        self.root = _locate_root(Path(root))
        self.split = split
        self.size = int(size)
        self.crop = crop
        self.margin = float(margin)
        self.max_image_pixels = max_image_pixels
        self.label_file = self._label_file(label_file)
        if self.label_file.suffix.lower() == ".json":
            entries = _read_json_labels(self.label_file)
        else:
            entries = _read_txt_labels(self.label_file)
        entries.sort(key=lambda e: e.name)
        if spoof_types is not None:
            keep = {int(t) for t in spoof_types}
            unknown = keep - set(SPOOF_TYPES)
            if unknown:
                raise ValueError(f"spoof_types {sorted(unknown)} are not CelebA-Spoof spoof types; they are {SPOOF_TYPES}")
            if any(e.spoof_type == UNKNOWN_SPOOF_TYPE for e in entries):
                raise ValueError(f"{self.label_file} gives no spoof types (a txt label list), so spoof_types cannot "
                                 "select by type; use the JSON label file")
            entries = [e for e in entries if e.spoof_type in keep]
        if limit is not None and limit < len(entries):
            picks = np.unique(np.linspace(0, len(entries) - 1, int(limit)).round().astype(np.int64))
            entries = [entries[i] for i in picks]
        if not entries:
            raise DataFileError(f"{self.label_file} lists no images" + (" of the chosen spoof_types" if spoof_types else ""))
        self.records: list[SpoofRecord] = [self._record(e, check_files) for e in entries]
        self.attributes: NDArray[np.int8] | None = None
        if all(e.attributes is not None for e in entries):
            self.attributes = np.array([e.attributes for e in entries], dtype=np.int8).reshape(len(entries), _TYPE)

    def _label_file(self, label_file: str | os.PathLike | None) -> Path:
        if label_file is not None:
            path = Path(label_file)
            if not path.is_file():
                raise FileNotFoundError(f"label_file {path} does not exist")
            return path
        metas = self.root / "metas" / "intra_test"
        for candidate in (metas / f"{self.split}_label.json", metas / f"{self.split}_label.txt"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{self.root} holds neither {metas / f'{self.split}_label.json'} nor its .txt form; "
                                "pass the CelebA_Spoof folder (with Data/ and metas/intra_test/) as root")

    def _where(self, entry: int) -> str:
        """The label file and the entry (JSON) or line (txt) that lists a record, for messages."""
        if self.label_file.suffix.lower() == ".json":
            return f"{self.label_file} (entry {entry})"
        return f"{self.label_file}:{entry}"

    def _record(self, e: _Entry, check_files: bool) -> SpoofRecord:
        where = self._where(e.entry)
        check_listed_path(e.name, self.root, where)
        path = self.root / e.name
        parts = Path(e.name).parts
        subject = parts[2] if len(parts) >= 5 and parts[0] == "Data" else ""
        box_224 = box = None
        image_size = None
        if check_files:
            image_size = _image_size(path, where, self.max_image_pixels)
            box_224 = read_box_file(box_file_of(path), path)
            box = scale_box(box_224, *image_size, where=str(box_file_of(path)))
        return SpoofRecord(path=path, name=e.name, entry=e.entry, subject=subject, label=e.label, spoof_type=e.spoof_type,
                           illumination=e.illumination, environment=e.environment, box_224=box_224, box=box,
                           image_size=image_size)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> NDArray[np.int64]:
        """0 live / 1 spoof of every record, int64 [N]."""
        return np.array([r.label for r in self.records], dtype=np.int64)

    @property
    def spoof_types(self) -> NDArray[np.int64]:
        """Spoof type of every record, int64 [N] (:data:`UNKNOWN_SPOOF_TYPE` where the label file gives none)."""
        return np.array([r.spoof_type for r in self.records], dtype=np.int64)

    def image(self, i: int) -> NDArray[np.uint8]:
        """The whole image of record ``i``, BGR uint8 [H, W, 3]."""
        r = self.records[i]
        try:
            data = r.path.read_bytes()
        except FileNotFoundError:
            raise DataFileError(f"{self._where(r.entry)} lists {r.path}, which is missing; restore it from the dataset "
                                "archive") from None
        return decode_image(data, str(r.path), self.max_image_pixels)

    def face_box(self, i: int, image: NDArray[np.uint8] | None = None) -> FaceBox:
        """The face box of record ``i`` in pixels of its decoded image (read now if the record has none)."""
        r = self.records[i]
        if image is None and r.box is not None:
            return r.box
        height, width = (image if image is not None else self.image(i)).shape[:2]
        box_224 = r.box_224 if r.box_224 is not None else read_box_file(r.box_file, r.path)
        return scale_box(box_224, width, height, where=str(r.box_file))

    def face(self, i: int) -> NDArray[np.uint8]:
        """Record ``i`` as the reader feeds it to a model before resizing: the face crop (or the whole image
        when ``crop=False``), BGR uint8."""
        img = self.image(i)
        if not self.crop:
            return img
        return crop_face(img, self.face_box(i, img), self.margin)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        r = self.records[i]
        return image_to_tensor(self.face(i), self.size), r.label, r.spoof_type
