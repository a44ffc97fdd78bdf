"""The Chapter 3 experiment driver: data groups, flips, caching/resume, records, the 2-D demo."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from faceopt.fingerprint import code_fingerprint
from faceopt.recognition import experiments as ex
from faceopt.recognition import runs
from faceopt.recognition.heads import MarginHead
from faceopt.recognition.hypersphere import angles, planar_run
from faceopt.results import decide
from faceopt.train import TrainConfig, lr_at

MICRO = dataclasses.replace(
    ex.PRESETS["smoke"], name="micro", identities=6, images_per_identity=4, teacher_options={"width": 0.125},
    teacher_steps=40, student_steps=2, batch_groups=2, group=2, lfw_folds=2, lfw_pairs_per_fold=8,
    agedb_pairs_per_fold=8, megaface_probe_identities=4, megaface_probe_images=2, megaface_distractors=6)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_training_set_groups_and_validation() -> None:
    images = torch.arange(8 * 3 * 4 * 4, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(8, 3, 4, 4)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    d = ex.TrainingSet(images, labels, group=2)
    assert len(d) == 4 and d.num_classes == 2
    x, y = d[3]
    assert torch.equal(x, images[6:8]) and y.tolist() == [1, 1]
    with pytest.raises(ValueError, match="divide"):
        ex.TrainingSet(images, labels, group=3)
    with pytest.raises(ValueError, match="sorted"):
        ex.TrainingSet(images, torch.tensor([0, 1, 0, 0, 1, 1, 1, 1]), group=2)
    with pytest.raises(ValueError, match="uint8"):
        ex.TrainingSet(images.float(), labels, group=2)
    with pytest.raises(ValueError, match="both"):
        ex.TrainingSet(images, labels, group=2, teacher=torch.zeros(8, 5))


def test_loss_fn_mirrors_image_and_teacher_embedding_together() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (1, 16, 3, 2, 5), dtype=torch.uint8)   # [P, K, 3, H, W]
    labels = torch.arange(16)[None]
    t, t_flip = torch.zeros(1, 16, 3), torch.ones(1, 16, 3)
    seen = {}

    def net(x, y, te=None):
        seen.update(x=x, te=te)
        return x.sum() * 0

    ex._loss_fn(net, [images, labels, t, t_flip])
    x, te = seen["x"], seen["te"]
    flipped = te[:, 0] == 1
    assert 0 < int(flipped.sum()) < 16          # a random mix of mirrored and plain images
    expect = torch.where(flipped[:, None, None, None], images[0].flip(3), images[0]).float()
    assert torch.allclose(x, (expect - 127.5) / 127.5)  # the network sees (x - 127.5) / 127.5


def test_lr_warmup_then_steps() -> None:
    cfg = TrainConfig(max_steps=100, lr=0.1, milestones=(50,), warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.01)
    assert lr_at(4, cfg) == pytest.approx(0.05)
    assert lr_at(9, cfg) == pytest.approx(0.1) and lr_at(49, cfg) == pytest.approx(0.1)
    assert lr_at(50, cfg) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(max_steps=3, warmup_steps=-1)


def test_overrides_and_key() -> None:
    p = ex.with_overrides(ex.PRESETS["full"], ["identities=1000", "teacher=iresnet100", "milestones=[0.5]"])
    assert p.identities == 1000 and p.teacher == "iresnet100" and p.milestones == (0.5,)
    assert p.key() != ex.PRESETS["full"].key()
    assert dataclasses.replace(p, seeds=(0, 1, 2, 3, 4)).key() == p.key()  # more seeds extend a run
    with pytest.raises(ValueError, match="FIELD"):
        ex.with_overrides(p, ["nonsense=1"])


def test_margin_histogram_counts_and_range() -> None:
    torch.manual_seed(0)
    head = MarginHead(8, 5)
    emb = head.weight.detach()[torch.arange(40) % 5] + 0.3 * torch.randn(40, 8)
    labels = torch.arange(40) % 5
    h = ex.margin_histogram(head, emb, labels, batch_size=16, bins=10)
    assert sum(h["a_counts"]) == 32 and sum(h["m_counts"]) == 32  # two full batches of 16
    # by hand: the same two batches, a_i = cos(W_y, x_i), m_i = (0.5 - 0.2) / max_batch(a) * a_i + 0.2
    order = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    a_all, m_all = [], []
    for idx in (order[:16], order[16:32]):
        w = torch.nn.functional.normalize(head.weight.detach()[labels[idx]], dim=1)
        a = (w * torch.nn.functional.normalize(emb[idx], dim=1)).sum(1)
        a_all.append(a)
        m_all.append(0.3 / a.max() * a + 0.2)
    a, m = torch.cat(a_all), torch.cat(m_all)
    assert h["a_mean"] == pytest.approx(float(a.mean()), abs=1e-6)
    assert h["m_mean"] == pytest.approx(float(m.mean()), abs=1e-6)
    assert h["m_below_0.3"] == pytest.approx(float((m < 0.3).float().mean()))
    assert h["a_counts"] == np.histogram(a.numpy(), bins=10, range=(-1.0, 1.0))[0].tolist()


def test_run_comparison_caches_resumes_and_records(tmp_path, monkeypatch) -> None:
    folder = runs.run_comparison(MICRO, tmp_path, methods=["arcface", "copy_mi_freeze"], seeds=[0],
                               device="cpu", log=lambda *_: None)
    assert folder == runs.run_folder(MICRO, tmp_path)
    teacher, students = runs.load_runs(folder)
    assert {s["method"] for s in students} == {"arcface", "margin_distillation"}  # the alias is one run
    by = {s["method"]: s for s in students}
    assert by["margin_distillation"]["train"]["centres_equal_teacher"] is True
    assert by["arcface"]["train"]["centres_equal_teacher"] is False
    for rec in (teacher, *students):
        assert {"lfw", "agedb", "megaface_rank1"} <= set(rec["metrics"])
        assert 0 <= rec["metrics"]["megaface_rank1"] <= 100
    assert teacher["eval_sizes"]["distractors"] == 6
    # the teacher's record describes the saved teacher: evaluated again from teacher.pt, the same numbers
    state = torch.load(folder / "teacher.pt", weights_only=True)
    backbone, _ = ex.build_teacher(MICRO)
    backbone.load_state_dict(state["backbone"])
    assert ex.evaluate_backbone(backbone, ex.build_eval_sets(MICRO)) == pytest.approx(teacher["metrics"])
    for rec in (teacher, *students):   # who made each record
        assert rec["code"] == code_fingerprint(ex.RUN_CODE) and rec["torch"] == torch.__version__
        assert rec["git_rev"] and rec["machine"]

    def boom(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(ex, "train_student", boom)
    monkeypatch.setattr(ex, "train_teacher", boom)
    runs.run_comparison(MICRO, tmp_path, methods=["arcface"], seeds=[0], device="cpu", log=lambda *_: None)

    bad = folder / "students" / "arcface-seed0.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="arcface-seed0.json"):
        runs.load_runs(folder)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="format"):
        runs.load_runs(folder)
    with pytest.raises(ValueError, match="unknown method"):
        runs.run_comparison(MICRO, tmp_path, methods=["distil_everything"], device="cpu")
    (folder / "students" / "margin_distillation-seed0.json").unlink()
    torch.save({"backbone": {}, "head": {"weight": torch.zeros(3, 512)}}, folder / "teacher.pt")
    with pytest.raises(ValueError, match="teacher.pt"):   # e.g. a teacher with another class count
        runs.run_comparison(MICRO, tmp_path, methods=["margin_distillation"], seeds=[0], device="cpu",
                            log=lambda *_: None)
    with pytest.raises(FileNotFoundError, match="teacher.json"):
        runs.load_runs(tmp_path / "nowhere")


def test_stale_cache_stops_with_what_exists_and_the_command(tmp_path, monkeypatch) -> None:
    runs.run_comparison(MICRO, tmp_path, methods=["arcface"], seeds=[0], device="cpu", log=lambda *_: None)
    old = runs.run_folder(MICRO, tmp_path)
    with pytest.raises(runs.StaleRunError, match="teacher"):   # the teacher of the whole comparison is missing
        runs.run_comparison(MICRO, tmp_path, train_missing=False)
    monkeypatch.setattr(ex, "code_fingerprint", lambda modules: "0" * 64)   # the code changed
    assert runs.run_folder(MICRO, tmp_path) != old
    with pytest.raises(runs.StaleRunError) as err:
        runs.run_comparison(MICRO, tmp_path, methods=["arcface"], seeds=[0], train_missing=False)
    msg = str(err.value)
    assert old.name in msg and "arcface-seed0" in msg and "faceopt distill --preset micro" in msg
    assert not runs.run_folder(MICRO, tmp_path).exists()    # nothing half-made


def test_load_runs_refuses_a_record_of_other_code(tmp_path) -> None:
    folder = runs.run_comparison(MICRO, tmp_path, methods=["arcface"], seeds=[0], device="cpu", log=lambda *_: None)
    path = folder / "students" / "arcface-seed0.json"
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "code": "f" * 64}))
    (folder / "teacher.json").write_text(json.dumps({**rec, "method": "teacher"}))
    with pytest.raises(runs.StaleRunError, match="arcface-seed0.json.*other code"):
        runs.load_runs(folder)


def test_arcface_student_is_the_same_with_or_without_teacher_embeddings() -> None:
    """The ArcFace student trains beside the teacher: its batches and flips must not depend on it."""
    images, labels = ex.render_training_set(MICRO)
    t = torch.randn(len(images), 512)
    head = MarginHead(512, MICRO.identities)
    a, _ = ex.train_student("arcface", MICRO, ex.TrainingSet(images, labels, MICRO.group), None)
    b, _ = ex.train_student("arcface", MICRO, ex.TrainingSet(images, labels, MICRO.group, t, t.flip(1)), head)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    with pytest.raises(ValueError, match="teacher_head"):
        ex.train_student("margin_distillation", MICRO, ex.TrainingSet(images, labels, MICRO.group), None)


def test_headline_runs_come_first_with_their_extra_seeds() -> None:
    p = dataclasses.replace(MICRO, seeds=(0, 1), headline_seeds=(2,))
    r = p.runs()
    assert r[:6] == [("arcface", 0), ("margin_distillation", 0), ("arcface", 1), ("margin_distillation", 1),
                     ("arcface", 2), ("margin_distillation", 2)]
    assert len(r) == 6 + 2 * (len(ex.METHODS) - 2) and len(set(r)) == len(r)
    assert dataclasses.replace(p, headline_seeds=(2, 3)).key() == p.key()   # more seeds extend a run


def test_cached_full_runs_are_complete() -> None:
    """The committed full-scale cache holds the teacher and every method x seed of the preset."""
    from faceopt.resources import resource_path

    folder = runs.run_folder(ex.PRESETS["full"], resource_path("runs", "margin_distillation"))
    teacher, students = runs.load_runs(folder)
    got = {(s["method"], s["seed"]) for s in students}
    assert got == set(ex.PRESETS["full"].runs())
    assert json.loads((folder / "config.json").read_text())["preset"]["teacher"] == ex.PRESETS["full"].teacher


def test_planar_run_copies_centres_and_bounds_margins() -> None:
    r = planar_run(identities=4, images=8, steps=60, batch=16)
    assert np.allclose(r.centres["margin_distillation"], r.centres["teacher"])
    assert set(r.embeddings) == {"no_margin", "teacher", "arcface", "margin_distillation"}
    assert not np.allclose(r.centres["arcface"], r.centres["teacher"])
    assert r.margins.max() == pytest.approx(0.5) and r.margins.min() >= 0.2 - 1e-6
    # m_i is linear in a_i: the largest teacher cosine gets m_max
    assert r.margins[np.argmax(r.teacher_cos)] == pytest.approx(0.5)
    assert np.allclose(angles(np.array([[1.0, 0.0], [0.0, 2.0]])), [0.0, np.pi / 2])
    with pytest.raises(ValueError, match="N, 2"):
        angles(np.zeros((3, 3)))


def test_comparison_parts_follow_the_rule() -> None:
    v = {"arcface": [90.0, 91.0, 90.5], "margin_distillation": [95.0, 95.5, 95.2], "angular": [94.0, 94.2, 94.1]}
    parts = runs.winner_parts(v)
    assert [p.name for p in parts] == ["margin_distillation > arcface", "margin_distillation > angular"]
    assert decide(parts) == "reproduced"
    assert parts[0].effect == pytest.approx(95.2333 - 90.5, abs=1e-3)
    v["angular"] = [95.6, 95.0, 95.4]           # higher mean, within the noise: that part is not reproduced
    assert decide(runs.winner_parts(v)) == "not-reproduced"
    p = runs.comparison_part({"a": [2.0, 2.1, 2.2], "b": [1.0, 1.1, 1.2]}, "a", "b", "LFW: ")
    assert p.name == "LFW: a > b" and p.status == "reproduced"
    assert runs.comparison_part({"a": [2.0, 1.0, 3.0], "b": [1.9, 1.8, 2.0]}, "a", "b").status == "not-reproduced"
    recs = [{"method": "x", "seed": 1, "metrics": {"lfw": 2.0}}, {"method": "x", "seed": 0, "metrics": {"lfw": 1.0}}]
    assert runs.collect(recs, "lfw") == {"x": [1.0, 2.0]}


def test_class_spread_by_hand() -> None:
    from faceopt.recognition.hypersphere import class_spread

    e = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-1.0, 0.0]])   # class 0 at 0 and 90 degrees
    assert class_spread(e, np.array([0, 0, 1, 1])) == pytest.approx((45 + 45 + 0 + 0) / 4)
