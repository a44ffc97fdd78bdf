"""Structure and sanity of the distillation experiments on the digits (not their accuracies)."""
import dataclasses
import math

import pytest
import torch

from faceopt.compress.kd_experiments import (
    KD_PRESETS,
    Curve,
    KDPreset,
    KDResult,
    Run,
    TeacherRun,
    ThinDeepStudent,
    WideShallowTeacher,
    choose,
    claim_parts,
    load_kd_data,
    run_all,
    runs_frame,
    stratified_subset,
    tables,
    train_student,
)
from faceopt.models.profile import count_parameters

TINY = dataclasses.replace(
    KD_PRESETS["smoke"], teacher_epochs=2, student_epochs=3, hint_epochs=1, temperatures=(1.0, 4.0), alphas=(0.9,),
    hint_weights=(0.1, 1.0), ensemble_size=2, ensemble_seeds=1, noise_sigmas=(0.2,), figure_temperatures=(1.0, 4.0, 16.0),
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny networks run fastest on one thread, and spinning threads stall on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny() -> KDResult:
    return run_all(TINY)


def test_presets_are_consistent() -> None:
    full, smoke = KD_PRESETS["full"], KD_PRESETS["smoke"]
    assert len(full.seeds) >= 5
    assert set(smoke.temperatures) <= set(full.temperatures)
    assert full.transfer_fraction < 1.0 and full.fitnet_fraction == 1.0
    with pytest.raises(ValueError):
        dataclasses.replace(smoke, hint_epochs=smoke.student_epochs)
    with pytest.raises(ValueError):
        dataclasses.replace(smoke, hint_epochs=0)
    with pytest.raises(ValueError):
        dataclasses.replace(smoke, alphas=(0.0,))
    with pytest.raises(ValueError):
        dataclasses.replace(smoke, transfer_fraction=0.0)


def test_models_follow_table_1_proportions() -> None:
    teacher, student = WideShallowTeacher(), ThinDeepStudent()
    assert count_parameters(student) / count_parameters(teacher) < 1 / 3
    conv = [m for m in student.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(conv) > len([m for m in teacher.modules() if isinstance(m, torch.nn.Conv2d)])
    x = torch.zeros(2, 1, 8, 8)
    assert student.guided(x).shape[-2:] == teacher.hint(x).shape[-2:]
    assert student(x).shape == teacher(x).shape == (2, 10)


def test_data_splits_are_disjoint_and_stratified() -> None:
    data = load_kd_data(0.2)
    assert len(data.pool) + len(data.val) == 1257 and len(data.test) == 540
    assert torch.all((torch.bincount(data.val.y, minlength=10) - 0.2 * torch.bincount(
        torch.cat([data.pool.y, data.val.y]), minlength=10)).abs() <= 1)
    y = data.pool.y
    a = stratified_subset(y, 0.25, torch.Generator().manual_seed(3))
    assert torch.equal(a, stratified_subset(y, 0.25, torch.Generator().manual_seed(3)))
    counts = torch.bincount(y[a], minlength=10)
    assert torch.all((counts - 0.25 * torch.bincount(y, minlength=10)).abs() <= 1)


def test_training_is_deterministic() -> None:
    data = load_kd_data()
    first, steps = train_student(data, data.val, 5, TINY)
    second, _ = train_student(data, data.val, 5, TINY)
    assert first == second and steps == TINY.student_epochs * math.ceil(len(data.val) / TINY.batch_size)


def test_run_all_structure_and_budgets(tiny: KDResult) -> None:
    runs = tiny.runs
    for r in runs:
        assert 0.0 <= r.val_accuracy <= 1.0 and 0.0 <= r.test_accuracy <= 1.0
        assert len(r.curve.test_accuracy) == r.epochs == TINY.student_epochs
        assert r.curve.test_accuracy[-1] == r.test_accuracy  # last epoch, not the best
    for t in tiny.teachers:
        assert 0.0 <= t.test_accuracy <= 1.0
    # equal budgets within each comparison
    for experiment in ("temperature", "logits", "ensemble", "fitnet"):
        budgets = {(r.epochs, r.steps, r.train_images) for r in runs if r.experiment == experiment}
        assert len(budgets) == 1, (experiment, budgets)
    transfer = {r.train_images for r in runs if r.experiment in ("temperature", "logits", "ensemble")}
    fitnet = {r.train_images for r in runs if r.experiment == "fitnet"}
    assert transfer.pop() < fitnet.pop()
    methods = {(r.experiment, r.method) for r in runs}
    assert {("temperature", "hard labels"), ("temperature", "KD"), ("logits", "logit regression"),
            ("logits", "noisy teacher"), ("fitnet", "plain"), ("fitnet", "KD"), ("fitnet", "hints then KD (FitNets)"),
            ("fitnet", "hints + KD"), ("ensemble", "ensemble KD")} == methods
    per_seed = len(TINY.temperatures) * len(TINY.alphas) + 1
    assert sum(r.experiment == "temperature" for r in runs) == per_seed * len(TINY.seeds)
    assert sum(r.experiment == "ensemble" for r in runs) == TINY.ensemble_seeds
    kinds = [t.kind for t in tiny.teachers]
    assert kinds.count("teacher") == len(TINY.seeds) and kinds.count("ensemble") == TINY.ensemble_seeds


def test_choices_come_from_validation(tiny: KDResult) -> None:
    assert tiny.chosen["T"] in TINY.temperatures and tiny.chosen["alpha"] in TINY.alphas
    assert tiny.chosen["hint_weight"] in TINY.hint_weights and tiny.chosen["sigma"] in TINY.noise_sigmas
    assert {k: tiny.chosen[k] for k in ("T", "alpha")} == choose(tiny.runs, "temperature", "KD", ("T", "alpha"))


def test_softened_distributions_flatten_with_temperature(tiny: KDResult) -> None:
    entropies = []
    for probs in tiny.softened.values():
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        entropies.append(-sum(p * math.log(p) for p in probs if p > 0))
    assert entropies == sorted(entropies)
    assert 0 <= tiny.figure_label < 10


def test_tables_and_parts(tiny: KDResult) -> None:
    t = tables(tiny)
    assert set(t) == {"temperature", "methods", "fitnet", "softened", "comparisons", "claims"}
    assert len(t["comparisons"]) == 8
    assert len(t["temperature"]) == 1 + len(TINY.temperatures) * len(TINY.alphas)
    assert (t["temperature"]["chosen"] == "chosen on validation").sum() == 1
    assert "±" in t["fitnet"]["test accuracy"].iloc[0]
    assert t["fitnet"]["ratio to teacher"].iloc[1] < 1 / 3
    assert list(t["claims"]["claim"]) == ["S1-kd-temperature", "T1-fitnet", "T1-fitnet"]
    assert len(runs_frame(tiny)) == len(tiny.runs)
    parts = claim_parts(tiny)
    assert [len(parts[k]) for k in ("S1-kd-temperature", "T1-fitnet")] == [1, 2]


# ---------------------------------------------------------------- claim parts on synthetic results


def _run(experiment: str, method: str, seed: int, acc: float, **settings: float) -> Run:
    return Run(experiment, method, seed, acc, acc, 3, 30, 100, dict(settings), Curve([1.0], [acc], [acc]))


def _synthetic(kd: float, hard: float, fitnet: float, plain: float, teacher: float) -> KDResult:
    runs, teachers = [], []
    for seed, jitter in enumerate((-0.004, 0.0, 0.004)):
        runs += [_run("temperature", "hard labels", seed, hard + jitter, T=float("nan"), alpha=0.0),
                 _run("temperature", "KD", seed, kd + jitter, T=4.0, alpha=0.9),
                 _run("temperature", "KD", seed, 0.5, T=1.0, alpha=0.9),
                 _run("fitnet", "plain", seed, plain + jitter),
                 _run("fitnet", "hints then KD (FitNets)", seed, fitnet + jitter, T=4.0, alpha=0.9)]
        teachers.append(TeacherRun(seed, "teacher", teacher + jitter, teacher + jitter))
    return KDResult(TINY, runs, teachers, {"T": 4.0, "alpha": 0.9, "sigma": 0.1, "hint_weight": 1.0}, {}, {})


def test_claim_parts_signs_on_synthetic_results() -> None:
    good = claim_parts(_synthetic(kd=0.95, hard=0.90, fitnet=0.97, plain=0.93, teacher=0.96))
    (s1,), (hints, vs_teacher) = good["S1-kd-temperature"], good["T1-fitnet"]
    assert s1.effect == pytest.approx(0.05) and s1.beyond_noise and s1.status == "reproduced"
    assert "T=4" in s1.name  # the chosen temperature, not the bad T=1 row
    assert hints.effect == pytest.approx(0.04) and hints.beyond_noise
    assert vs_teacher.effect == pytest.approx(0.01) and vs_teacher.stderr is not None

    t = tables(_synthetic(kd=0.95, hard=0.90, fitnet=0.97, plain=0.93, teacher=0.96))
    diffs = dict(zip(t["comparisons"]["comparison"], t["comparisons"]["difference"]))
    assert diffs["KD above hard labels (claim S1)"] == pytest.approx(0.05)
    assert diffs["FitNets student above its teacher (claim T1)"] == pytest.approx(0.01)

    bad = claim_parts(_synthetic(kd=0.88, hard=0.90, fitnet=0.92, plain=0.93, teacher=0.98))
    assert bad["S1-kd-temperature"][0].effect == pytest.approx(-0.02) and bad["S1-kd-temperature"][0].status == "not-reproduced"
    assert bad["T1-fitnet"][0].effect < 0 and bad["T1-fitnet"][1].effect == pytest.approx(-0.06)


def test_choose_takes_the_best_mean_validation_and_the_first_of_ties() -> None:
    runs = [_run("temperature", "KD", s, acc, T=T, alpha=0.9)
            for s in range(2) for T, acc in ((1.0, 0.8), (2.0, 0.9), (4.0, 0.9))]
    assert choose(runs, "temperature", "KD", ("T", "alpha")) == {"T": 2.0, "alpha": 0.9}
    with pytest.raises(ValueError):
        choose(runs, "fitnet", "plain", ("T",))


def test_preset_fields_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        KD_PRESETS["smoke"].seeds = (1,)  # type: ignore[misc]
    assert isinstance(KD_PRESETS["smoke"], KDPreset)
