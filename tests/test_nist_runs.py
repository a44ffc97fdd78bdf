"""Page 06's trainings and evaluations: the float32 loss under autocast, rendering in processes, the cached runs."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from faceopt.recognition import nist_eval as ev
from faceopt.recognition import nist_experiments as nx
from faceopt.recognition import nist_runs
from faceopt.recognition.heads import FaceRecognizer, MarginHead
from faceopt.recognition.losses import CombinedMarginLoss
from faceopt.recognition.margin_warmup import MarginWarmupLoss
from faceopt.recognition.runs import StaleRunError

SMOKE = nist_runs.PRESETS["smoke"]


def test_all_pair_scores_split_genuine_and_impostor():
    e = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    genuine, impostor = ev.pair_scores_all(e, np.array([7, 7, 3]))
    assert genuine.tolist() == [1.0] and sorted(impostor.tolist()) == [0.0, 0.0]


def test_fmr_falls_back_to_the_smallest_decade_the_impostors_allow():
    assert ev._usable_fmr(1e-6, 2_000_000) == 1e-6
    assert ev._usable_fmr(1e-6, 60) == 0.1  # 1/60 rounded up to a decade
    assert ev._usable_fmr(1e-4, 10_000) == 1e-4


def test_head_and_margin_loss_run_in_float32_under_autocast():
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 512))
    net = FaceRecognizer(backbone, MarginHead(512, 5), MarginWarmupLoss(64, 0.5, 0.5, 0))
    x = torch.randint(0, 256, (2, 3, 3, 8, 8), dtype=torch.uint8)
    y = torch.tensor([[0, 0, 0], [1, 1, 1]])
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nx._loss_fn(net, (x, y))
    assert loss.dtype == torch.float32
    # the same flips and bf16 embeddings, with the head and loss computed by hand in float32
    torch.manual_seed(1)
    flat_x, flat_y = x.reshape(-1, 3, 8, 8), y.reshape(-1)
    flip = torch.rand(len(flat_x)) < 0.5
    xs = nx.normalise(torch.where(flip[:, None, None, None], flat_x.flip(3), flat_x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = backbone(xs)
    want = CombinedMarginLoss(64, 1, 0.5, 0)(net.head(emb.float()), flat_y)
    assert torch.allclose(loss, want, atol=1e-5)


def test_margin_distillation_needs_the_teacher():
    with pytest.raises(ValueError, match="teacher's head"):
        nx.train_student("margin_distillation", SMOKE, torch.zeros(8, 3, 32, 32, dtype=torch.uint8),
                         torch.arange(4).repeat_interleave(2))
    with pytest.raises(ValueError, match="unknown student method"):
        nx.train_student("triplet", SMOKE, torch.zeros(8, 3, 32, 32, dtype=torch.uint8), torch.zeros(8).long())


def test_the_student_has_the_thesis_size_and_teachers_keep_the_depth_ratio():
    full = nist_runs.PRESETS["full"]
    student = nx.build_backbone("student", full)
    assert abs(sum(p.numel() for p in student.parameters()) / 9.11e6 - 1) < 0.10
    r100, r50 = nx.build_backbone("resnet100", full), nx.build_backbone("resnet50", full)
    assert sum(p.numel() for p in r100.parameters()) > sum(p.numel() for p in r50.parameters())
    with pytest.raises(ValueError, match="unknown model"):
        nx.build_backbone("vgg", full)


def test_rendering_in_processes_gives_the_same_images():
    tiny = dataclasses.replace(SMOKE, identities=4, images_per_identity=3)
    one, labels = nist_runs.render_training_set(tiny, processes=1, chunk=5)
    two, labels2 = nist_runs.render_training_set(tiny, processes=2, chunk=5)
    assert torch.equal(one, two) and torch.equal(labels, labels2) and one.dtype == torch.uint8
    assert one.shape == (12, 3, tiny.size, tiny.size) and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_run_names_and_the_key():
    assert nist_runs.run_names(SMOKE) == ["teacher-resnet100", "teacher-resnet50", "student-arcface-seed0",
                                          "student-margin_distillation-seed0"]
    assert dataclasses.replace(SMOKE, student_steps=9).key() != SMOKE.key()
    assert dataclasses.replace(SMOKE, name="x", seeds=(5,)).key() == SMOKE.key()


def test_missing_runs_stop_the_full_page_and_unknown_runs_are_named(tmp_path):
    with pytest.raises(StaleRunError, match="faceopt nist --preset smoke"):
        nist_runs.run_nist(SMOKE, tmp_path, train_missing=False)
    with pytest.raises(ValueError, match="unknown run"):
        nist_runs.run_nist(SMOKE, tmp_path, runs=["teacher-vgg"])


@pytest.mark.slow
def test_smoke_runs_end_to_end(tmp_path):
    folder = nist_runs.run_nist(SMOKE, tmp_path / "runs", device="cpu", cache_dir=tmp_path / "cache", log=lambda m: None)
    records = nist_runs.load_nist_runs(folder)
    assert set(records) == set(nist_runs.run_names(SMOKE))
    md = records["student-margin_distillation-seed0"]
    assert md["method"] == "margin_distillation" and md["int8"]["int8_bytes"] < md["int8"]["fp32_bytes"]
    for rec in records.values():
        m = rec["metrics"]
        assert set(m["nist"]) == {"visa", "border", "wild"} and set(m["doorphone"]) == {"day-weak", "day-strong",
                                                                                        "night-weak"}
        assert all(0 <= v["fnmr"] <= 1 and v["fmr"] >= v["fmr_target"] for v in m["nist"].values())
        assert all(0 <= v["tar"] <= 1 for v in m["doorphone"].values()) and 0 <= m["megaface_rank1"] <= 100
        assert math.isfinite(rec["seconds"]) and rec["code"]
