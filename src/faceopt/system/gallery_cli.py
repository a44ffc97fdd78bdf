"""``faceopt enroll | identify | verify | gallery``: the recognition system on photos from the shell.

Faces are found and embedded by the real reference pipeline (:mod:`faceopt.system.dlib_reference`,
dlib's pretrained detector, landmarks and ResNet); the gallery is
:class:`~faceopt.system.gallery.Gallery` (``--gallery PATH``, default ``faceopt-gallery.bin``).
Each command prints one line per result, or JSON with ``--json``. An image with several faces
uses the largest and says so; an image without a face, or one that cannot be read, is one clear
line naming the file, and the command ends with status 1.

Scores are cosines of the embeddings. Two faces are taken as the same person at a cosine of at
least the gallery's threshold (``faceopt gallery threshold VALUE --fmr RATE``) or, for a gallery
without one, :data:`DEFAULT_THRESHOLD`: face_recognition's published tolerance (Euclidean
distance 0.6) at the typical norm of dlib's descriptors (1.38, measured on the package's photos),
``1 - 0.6**2 / (2 * 1.38**2)``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from faceopt.system.gallery import Gallery, GalleryError

#: Cosine equivalent of face_recognition's Euclidean tolerance 0.6 at dlib's typical descriptor norm 1.38.
DEFAULT_THRESHOLD = round(1 - 0.6**2 / (2 * 1.38**2), 3)
DEFAULT_GALLERY = Path("faceopt-gallery.bin")
EMBEDDING_DIM = 128


class FaceInputError(ValueError):
    """An image that cannot be read or holds no face."""


def _pipeline() -> Any:
    from faceopt.system.dlib_reference import DlibFacePipeline

    return DlibFacePipeline()


def embed_image(pipeline: Any, path: Path) -> tuple[np.ndarray, str]:
    """The embedding of the largest face in the image at ``path`` and a note ("" or how many faces were seen)."""
    image = cv2.imread(str(path))
    if image is None:
        raise FaceInputError(f"{path}: cannot read it as an image (is it a JPEG or PNG file?)")
    encoded = pipeline.encode(image)
    if not encoded:
        raise FaceInputError(f"{path}: no face found (the detector wants a frontal face at least ~80 px wide)")
    note = f"{len(encoded)} faces, the largest used" if len(encoded) > 1 else ""
    return np.asarray(encoded[0][1], dtype=np.float32), note


def _open(path: Path, *, create: bool) -> Gallery:
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"{path}: no gallery yet; enrol someone first: faceopt enroll NAME IMAGE --gallery {path}")
        return Gallery.create(path, EMBEDDING_DIM)
    return Gallery(path)


def _threshold(gallery: Gallery) -> float:
    return gallery.threshold if gallery.threshold is not None else DEFAULT_THRESHOLD


def _emit(args: argparse.Namespace, doc: dict, lines: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        for line in lines:
            print(line)


def _enroll(args: argparse.Namespace) -> int:
    pipeline, gallery = _pipeline(), _open(args.gallery, create=True)
    done, lines = [], []
    for image in args.images:
        embedding, note = embed_image(pipeline, image)
        count = gallery.enroll(args.name, embedding)
        done.append({"image": str(image), "note": note, "embeddings": count})
        lines.append(f"enrolled {args.name} from {image}" + (f" ({note})" if note else ""))
    _emit(args, {"name": args.name, "enrolled": done}, lines)
    return 0


def _identify(args: argparse.Namespace) -> int:
    from faceopt.system.video import is_video

    if is_video(args.image):
        return _identify_video(args)
    pipeline, gallery = _pipeline(), _open(args.gallery, create=False)
    embedding, note = embed_image(pipeline, args.image)
    threshold = _threshold(gallery)
    matches = [{"name": n, "cosine": round(c, 4), "match": c >= threshold} for n, c in gallery.identify(embedding, args.k)]
    best = matches[0] if matches and matches[0]["match"] else None
    lines = [f"{args.image}: " + (f"{best['name']} (cosine {best['cosine']:.3f})" if best else "unknown")
             + (f"; {note}" if note else "")]
    lines += [f"  {m['name']:<24} {m['cosine']:.3f}{'  match' if m['match'] else ''}" for m in matches]
    _emit(args, {"image": str(args.image), "note": note, "threshold": threshold, "matches": matches}, lines)
    return 0


def _identify_video(args: argparse.Namespace) -> int:
    from faceopt.system.video import doorbell_gate, identify_video

    gallery = _open(args.gallery, create=False)
    threshold = _threshold(gallery)
    try:
        report = identify_video(args.image, _pipeline(), gallery, threshold, every=args.every,
                                gate=doorbell_gate() if args.gate else None)
    except ValueError as exc:
        raise FaceInputError(str(exc)) from exc
    people = report.people()
    lines = [f"{args.image}: {report.frames} frames, {report.looked_at} looked at, recognition on {report.recognised}"
             f" ({report.wall_seconds:.1f} s)"]
    lines += [f"  {p['name']:<24} {p['frames']:>4} frame(s) {p['first s']:7.2f}-{p['last s']:.2f} s  best cosine "
              f"{p['best cosine']:.3f}" for p in people] or ["  no faces"]
    _emit(args, {**report.to_dict(), "threshold": threshold}, lines)
    return 0


def _verify(args: argparse.Namespace) -> int:
    pipeline = _pipeline()
    (a, note_a), (b, note_b) = embed_image(pipeline, args.images[0]), embed_image(pipeline, args.images[1])
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    threshold = args.threshold if args.threshold is not None else DEFAULT_THRESHOLD
    same = cosine >= threshold
    notes = "; ".join(n for n in (note_a, note_b) if n)
    _emit(args, {"images": [str(p) for p in args.images], "cosine": round(cosine, 4), "threshold": threshold,
                 "same_person": same, "note": notes},
          [f"{'same person' if same else 'different people'}: cosine {cosine:.3f} (threshold {threshold:.3f})"
           + (f"; {notes}" if notes else "")])
    return 0


def _gallery(args: argparse.Namespace) -> int:
    gallery = _open(args.gallery, create=False)
    if args.action == "list":
        names = gallery.names()
        doc = {"gallery": str(args.gallery), "names": {n: len(gallery.embeddings(n)) for n in names},
               "threshold": gallery.threshold}
        lines = [f"{n}: {len(gallery.embeddings(n))} embedding(s)" for n in names] or ["(empty)"]
        _emit(args, doc, lines)
    elif args.action == "remove":
        removed = gallery.remove(args.value)
        _emit(args, {"removed": args.value, "embeddings": removed}, [f"removed {args.value} ({removed} embedding(s))"])
    else:  # threshold
        info = gallery.set_threshold(float(args.value), fmr=args.fmr, method="set on the command line")
        _emit(args, {"threshold": info.value, "fmr": info.fmr}, [f"threshold {info.value:.3f} for FMR {info.fmr:g}"])
    return 0


def main(command: str, argv: list[str]) -> int:
    """Run ``faceopt <command> ...`` (``enroll``, ``identify``, ``verify`` or ``gallery``)."""
    parser = argparse.ArgumentParser(prog=f"faceopt {command}", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    if command != "verify":
        parser.add_argument("--gallery", type=Path, default=DEFAULT_GALLERY, help=f"gallery file ({DEFAULT_GALLERY})")
    if command == "enroll":
        parser.add_argument("name")
        parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
        run = _enroll
    elif command == "identify":
        parser.add_argument("image", type=Path, metavar="IMAGE|VIDEO",
                            help="a photo, or a video (.mp4 .avi .mkv .mov .webm .m4v) read frame by frame")
        parser.add_argument("-k", type=int, default=3, help="how many names to list for a photo (3)")
        parser.add_argument("--every", type=int, default=5, help="video: look at every N-th frame (5)")
        parser.add_argument("--gate", action="store_true",
                            help="video: run recognition only where AmphibianDetector (BlazeFace, page 03's door-phone "
                                 "setting) sees a moving face")
        run = _identify
    elif command == "verify":
        parser.add_argument("images", nargs=2, type=Path, metavar="IMAGE")
        parser.add_argument("--threshold", type=float, default=None, help=f"cosine threshold ({DEFAULT_THRESHOLD})")
        run = _verify
    else:
        parser.add_argument("action", choices=("list", "remove", "threshold"))
        parser.add_argument("value", nargs="?", help="the name to remove, or the threshold (a cosine)")
        parser.add_argument("--fmr", type=float, default=None, help="the false-match rate the threshold was chosen for")
        run = _gallery
    args = parser.parse_args(argv)
    if command == "gallery" and args.action != "list" and args.value is None:
        parser.error(f"gallery {args.action} needs a value")
    if command == "gallery" and args.action == "threshold" and args.fmr is None:
        parser.error("gallery threshold needs --fmr, the false-match rate the threshold was chosen for")
    try:
        return run(args)
    except (FaceInputError, GalleryError, FileNotFoundError, KeyError) as exc:
        print(f"faceopt {command}: {str(exc).strip(chr(39))}", file=sys.stderr)
        return 1
