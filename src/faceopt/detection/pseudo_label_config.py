"""The parameters and counts of the vtest.avi box maker (:mod:`faceopt.detection.pseudo_labels`).

:class:`PseudoLabelConfig` holds every parameter (stored in the annotation header),
:data:`VTEST_OCCLUDERS` the static things of vtest.avi that people walk behind (measured by
hand on the median background), :data:`VTEST_CONFIG` the preset that made the committed
``vtest_persons.json``, and :class:`PseudoLabelStats` the counts of one run.
"""
from __future__ import annotations

from dataclasses import dataclass

#: vtest.avi's lamp post sign and the post itself (read off the median background):
#: people walking behind them fall apart into pieces above/below or left/right of them.
VTEST_OCCLUDERS: tuple[tuple[int, int, int, int], ...] = ((412, 202, 446, 245), (423, 40, 436, 395))


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Every parameter of the box maker (stored in the annotation header)."""

    background_step: int = 5
    """Median background over frames ``0, step, 2*step, ...``."""
    blur: int = 5
    """Side of the Gaussian blur on the difference image (odd; 0 or 1: none)."""
    diff_threshold: int = 30
    """Foreground: blurred max-channel absolute difference to the background above this (0..255)."""
    open_size: tuple[int, int] = (1, 7)
    """Opening element (width, height): a vertical bar removes horizontal lines thinner than its height."""
    close_size: tuple[int, int] = (7, 15)
    """Elliptic closing element (width, height) that joins the parts of one body."""
    min_area: int = 150
    """Smallest blob (foreground pixels after the morphology)."""
    min_height: int = 25
    """Smallest blob height in pixels."""
    min_piece_area: int = 40
    """Smallest component that may be joined to another across an occluder."""
    occluders: tuple[tuple[int, int, int, int], ...] = ()
    """Static things people walk behind, ``(x1, y1, x2, y2)`` in frame pixels: pieces of a blob
    that they cut apart are joined (:data:`VTEST_OCCLUDERS` for vtest.avi)."""
    occluder_margin: int = 4
    """Slack in pixels around each occluder."""
    score_threshold: float = 0.5
    """Detector score a detection needs (MediaPipe's default)."""
    nms_iou: float = 0.3
    """IoU of the detector boxes above which detections from overlapping crops are merged."""
    crop_scale: float = 2.0
    """Crop side = this times the blob height, clipped to ``[min_crop, max_crop]``."""
    min_crop: int = 96
    max_crop: int = 320
    min_split_distance: float = 0.3
    """Two detections in one blob whose torso centres are closer in x than this times the
    larger full-body radius are one person (the weaker one is dropped)."""
    split_score: float = 0.6
    """A second (third, ...) person in a blob needs at least this score ..."""
    max_radius_ratio: float = 1.5
    """... a full-body radius within this factor of the strongest detection's ..."""
    max_split_dy: float = 0.4
    """... and a torso centre at most this many of its radii above or below."""
    min_part_area: int = 80
    """A split part with fewer foreground pixels is dropped."""
    split_clip_scale: float = 1.1
    """A split part is cut to its detection's full-body square (hip centre +- this times the radius)."""
    wide_aspect: float = 0.55
    """Blobs with width/height at least this (probably several people) get crops on their outer
    quarters too and are searched again after erasing the people found."""
    erase_width: float = 0.3
    """Half-width of the erased column band, in full-body radii."""
    redetect_rounds: int = 2
    """At most this many re-detection passes per frame (0: none)."""
    min_unconfirmed_height: int = 28
    """A blob without a detection is kept only if it is at least this tall ..."""
    min_aspect: float = 1.8
    """... and its height/width is at least this (people are upright), or it is a group:"""
    min_group_height: int = 50
    """a blob without a detection at least this tall ..."""
    min_group_aspect: float = 0.8
    """... with height/width at least this is kept as one box (people standing together the
    detector does not find: a merged-group box is kept rather than a miss)."""
    valley_aspect: float = 0.6
    """A blob with at most one detection and width/height at least this is cut at a column valley ..."""
    valley_min_width: float = 0.2
    """... at least this many blob heights from either side ..."""
    valley_depth: float = 0.5
    """... whose column count is at most this times the smaller peak on either side ..."""
    valley_min_height: float = 0.6
    """... when both parts are at least this many blob heights tall (see :func:`valley_split`)."""
    carry_aspect: float = 0.35
    """A blob with at most one detection and width/height at least this may be cut between the
    previous frame's people (pairs one slightly behind the other are narrower than ``wide_aspect``)."""
    carry_inside: float = 0.6
    """A previous-frame box carries its person into a blob when this share of it lies inside
    the blob (widened by ``carry_margin`` pixels) ..."""
    carry_margin: int = 4
    carry_min_separation: float = 0.2
    """... and its centre is at least this many blob heights (along x) from the other carried ones."""
    threads: int = 1
    """``torch.set_num_threads`` during the run (restored afterwards)."""

    def __post_init__(self) -> None:
        if self.background_step < 1:
            raise ValueError(f"background_step must be >= 1, got {self.background_step}")
        if not 0 < self.diff_threshold < 255:
            raise ValueError(f"diff_threshold must be in 1..254, got {self.diff_threshold}")
        if self.min_crop < 16 or self.max_crop < self.min_crop:
            raise ValueError(f"need 16 <= min_crop <= max_crop, got {self.min_crop}, {self.max_crop}")
        if self.blur > 1 and self.blur % 2 == 0:
            raise ValueError(f"blur must be odd, got {self.blur}")
        if self.threads < 1 or self.redetect_rounds < 0:
            raise ValueError(f"need threads >= 1 and redetect_rounds >= 0, got {self.threads}, {self.redetect_rounds}")


#: The parameters used for the committed ``vtest_persons.json``.
VTEST_CONFIG = PseudoLabelConfig(occluders=VTEST_OCCLUDERS)


@dataclass
class PseudoLabelStats:
    """Counts from one run (written into the annotation header)."""

    frames: int = 0
    blobs: int = 0
    crops: int = 0
    detections: int = 0
    """Detections after NMS, anywhere in the frame."""
    detections_off_blob: int = 0
    """Detections whose torso centre lies in no blob (not used as boxes)."""
    blobs_confirmed: int = 0
    """Blobs holding exactly one detection."""
    blobs_split: int = 0
    """Blobs holding two or more detections (split into that many boxes)."""
    redetected: int = 0
    """Detections found only after erasing the people already found in a wide blob."""
    blobs_valley_split: int = 0
    """Blobs with at most one detection cut at a column valley (counted in confirmed/unconfirmed too)."""
    blobs_carried_split: int = 0
    """Wide blobs with at most one detection cut between the previous frame's people."""
    blobs_unconfirmed_kept: int = 0
    blobs_unconfirmed_dropped: int = 0
    boxes: int = 0
    frames_with_boxes: int = 0
    seconds: float = 0.0


#: The named presets of ``faceopt pseudo-labels --preset``.
PRESETS = {"vtest": VTEST_CONFIG}
