"""Figure helpers that place things: labels must not overprint each other."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from faceopt.system.diagram import label_points, work_against_latency  # noqa: E402


def test_labels_of_coinciding_points_do_not_overlap():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set(xlim=(0, 10), ylim=(0, 10))
    labels = label_points(ax, [(5, 5, "mobilefacenet"), (5, 5.1, "mobiface"), (5, 4.9, "mobilenetv2"), (1, 1, "far")])
    renderer = fig.canvas.get_renderer()
    boxes = [lab.get_window_extent(renderer) for lab in labels]
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


def test_work_against_latency_labels_each_model_once_and_keeps_the_legend_off_the_axes():
    rows = [{"model": m, "GMACs": g, "runtime": rt, "latency (ms)": ms * f}
            for m, g, ms in (("a", 0.2, 9.0), ("b", 0.2, 7.0), ("c", 12.0, 70.0))
            for rt, f in (("one", 1.3), ("two", 1.0))]
    fig = work_against_latency(rows, label_runtime="two")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["a", "b", "c"]
    legend_box = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend_box.x0 >= ax.get_window_extent().x1  # beside the axes, not over the points
    plt.close(fig)


def test_speedup_panel_draws_each_layer_once_and_times_from_zero():
    import pandas as pd

    from faceopt.detection.experiments import StageTimes
    from faceopt.detection.figures import grid_heatmaps, time_and_speedup

    times = StageTimes(prepare=0.1, until={1: 0.2, 17: 3.0}, rest={1: 3.0, 17: 0.0}, decode=0.1, gate={1: 0.5, 17: 0.1})
    at_layer = pd.DataFrame({"threshold": [0.0, 0.5], "ms per frame": [3.9, 3.0]})
    fig = time_and_speedup(at_layer, times, chosen_layer=1, layers=(1, 1, 17))
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == ["m=1 (chosen)", "m=17"]
    assert fig.axes[0].get_ylim()[0] == 0
    plt.close(fig)
    grid = pd.DataFrame([{"layer": m, "threshold": t, "mAP": 0.5, "ms per frame": 1.0}
                         for m in range(1, 18) for t in (0.0, 0.5)])
    fig = grid_heatmaps(grid, "door")
    assert [lab.get_rotation() for lab in fig.axes[0].get_yticklabels()] == [0.0] * 17  # 17 layers, none overprinted
    plt.close(fig)


def test_calibration_rows_are_in_natural_order_and_bits_descend():
    from faceopt.compress.figures import calibration_table, natural_key

    assert sorted(["ReLU 10", "ReLU 4", "ReLU 1"], key=natural_key) == ["ReLU 1", "ReLU 4", "ReLU 10"]
    rows = [{"bits": b, "activation": f"ReLU {k}", "ranges": r, "error": 0.1 * k}
            for b in (4, 8) for k in (10, 1, 4) for r in ("static minmax", "dynamic")]
    table = calibration_table(rows)
    assert list(table.index) == [(8, "ReLU 1"), (8, "ReLU 4"), (8, "ReLU 10"), (4, "ReLU 1"), (4, "ReLU 4"), (4, "ReLU 10")]
    assert table.loc[(8, "ReLU 10"), "dynamic"] == 1.0


def test_quantisation_and_accuracy_figures_plot_the_means():
    import pandas as pd

    from faceopt.compress.figures import accuracy_against_bits, quantisation_errors

    errors = pd.DataFrame([{"bits": b, "tensor": f"{kind} {t}", "kind": kind, "coarse": 2.0 ** -b * (t + 2),
                            "fine": 2.0 ** -b} for b in (2, 4, 8) for kind in ("weight", "activation") for t in (0, 1)])
    fig = quantisation_errors(errors)
    bold = [line for line in fig.axes[0].get_lines() if line.get_linewidth() == 2.5]
    assert [list(line.get_ydata()) for line in bold] == [[0.25 * 2.5, 2 ** -4 * 2.5, 2 ** -8 * 2.5], [0.25, 2 ** -4, 2 ** -8]]
    plt.close(fig)
    pq = pd.DataFrame([{"bits": b, "seed": s, "float": 0.97, "PTQ": 0.9 - (b == 2) * 0.5, "QAT": 0.95}
                       for b in (2, 4, 8) for s in (0, 1)])
    fig = accuracy_against_bits(pq)
    assert sorted(t.get_text() for t in fig.axes[0].get_legend().get_texts()) == ["PTQ", "QAT", "float"]
    plt.close(fig)
