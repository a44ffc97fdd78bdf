"""The claims of thesis Chapter 1's survey (page 02), recorded from the chapter's experiments.

Each claim's parts are comparisons over seeds (:class:`~faceopt.stats.Comparison`), log latency
ratios with their standard errors, or exact observations; :func:`faceopt.results.record`
applies the one rule.
"""
from __future__ import annotations

import math

import pandas as pd

from faceopt.compress.experiments import CompressPreset
from faceopt.results import NOISE_K, Part, load_results, parts_from_json, parts_table, record
from faceopt.stats import Comparison, compare


def record_claims(*, preset: CompressPreset, seeds: int, iterative: Comparison, lottery: Comparison, lottery_sparsity: float,
                  collapse: pd.DataFrame, structured: pd.DataFrame, errors: pd.DataFrame, pq: pd.DataFrame,
                  int8: pd.DataFrame | None, chapter: str, scale: str, data: str) -> pd.DataFrame:
    """Record the survey's seven measured claims; return every recorded part with its status.

    ``iterative``: iterative against one-shot pruning accuracy; ``lottery``: rewound against randomly
    re-initialised tickets at ``lottery_sparsity``; ``collapse``, ``structured``, ``errors``, ``pq``
    and ``int8``: the frames of :mod:`faceopt.compress.experiments` (``int8`` None when the preset
    skips the INT8 deployment). ``preset``: the chapter's
    :class:`~faceopt.compress.experiments.CompressPreset`; ``seeds``: how many seeds were run.
    """
    common = dict(chapter=chapter, scale=scale)
    record("S1-iterative", **common, data=data,
           measured={"sparsity": preset.iterative_target, "rounds": preset.iterative_rounds,
                     "iterative": iterative.mean_a, "one_shot": iterative.mean_b,
                     "diff": iterative.diff, "stderr": iterative.stderr, "seeds": seeds},
           parts=[Part.compared("iterative above one-shot", iterative)],
           headline=f"at {preset.iterative_target:.0%} sparsity: iterative {iterative.mean_a:.4f}, one-shot "
                    f"{iterative.mean_b:.4f} ({iterative.diff:+.4f} ± {iterative.stderr:.4f})",
           note="LeNet-300-100, same fine-tuning budget; " + iterative.text())

    record("S1-lth-rewind", **common, data=data,
           measured={"sparsity": lottery_sparsity, "rewind": lottery.mean_a, "random_reinit": lottery.mean_b,
                     "diff": lottery.diff, "stderr": lottery.stderr, "seeds": seeds},
           parts=[Part.compared(f"rewind above random re-initialisation at {lottery_sparsity:.0%} sparsity",
                                        lottery)],
           headline=f"at {lottery_sparsity:.0%} sparsity: rewind {lottery.mean_a:.4f}, random re-initialisation "
                    f"{lottery.mean_b:.4f}",
           note=f"LeNet-300-100, rewind to step {preset.rewind_step}; " + lottery.text())

    by_crit = {c: collapse[(collapse.criterion == c) & (collapse.sparsity == collapse.sparsity.max())]["collapsed"].iloc[0]
               for c in ("magnitude", "gradient", "synflow")}
    record("S1-synflow-collapse", **common, data="LeNet-300-100 at initialisation",
           measured={"sparsity": float(collapse.sparsity.max()),
                     "collapsed_layers": {c: list(v) for c, v in by_crit.items()}},
           parts=[Part.observed("magnitude at initialisation empties a layer", bool(by_crit["magnitude"])),
                  Part.observed("SynFlow empties no layer", not by_crit["synflow"])],
           headline=f"at {collapse.sparsity.max():.1%} sparsity: magnitude at initialisation empties "
                    f"{len(by_crit['magnitude'])} layer(s), SynFlow {len(by_crit['synflow'])}",
           note=f"{len(by_crit['magnitude'])} layer(s) collapse for magnitude at init, "
                f"{len(by_crit['synflow'])} for SynFlow ({preset.synflow_iterations} iterations)")

    st = structured.set_index("model")
    record("S1-structured", **common, data="MobileNetV2 (zoo), random weights, 112x112",
           measured={k: {"torch_ms": float(st.loc[k, "torch_ms"]), "ort_ms": float(st.loc[k, "ort_ms"]),
                         "nonzero": int(st.loc[k, "nonzero"])} for k in st.index},
           parts=[Part(f"structured faster than unstructured ({rt}, log latency ratio)",
                               math.log(st.loc["unstructured", f"{rt}_ms"] / st.loc["structured", f"{rt}_ms"]),
                               math.hypot(st.loc["unstructured", f"{rt}_log_se"], st.loc["structured", f"{rt}_log_se"]))
                  for rt in ("torch", "ort")],
           headline=f"onnxruntime: structured {st.loc['structured', 'ort_ms']:.2f} ms, unstructured "
                    f"{st.loc['unstructured', 'ort_ms']:.2f} ms (same share of weights removed)",
           note="same fraction of weights removed; latency medians at batch 1, 2 threads, one run")

    w = errors[errors.kind == "weight"]
    a = errors[errors.kind == "activation"]
    record("S1-quant-perchannel", **common, data=data + "; LeNet-5-style CNN",
           measured={"weight_error_per_tensor": float(w["coarse"].mean()),
                     "weight_error_per_channel": float(w["fine"].mean()),
                     "relu_error_symmetric": float(a["coarse"].mean()),
                     "relu_error_asymmetric": float(a["fine"].mean()), "bits": list(preset.quant_bits)},
           parts=[Part.observed("per-channel below per-tensor error on every weight tensor",
                                        bool((w["fine"] < w["coarse"]).all())),
                  Part.observed("asymmetric below symmetric error on every ReLU output",
                                        bool((a["fine"] < a["coarse"]).all()))],
           headline=f"per-channel below per-tensor on {int((w['fine'] < w['coarse']).sum())}/{len(w)} weight "
                    f"tensors, asymmetric below symmetric on {int((a['fine'] < a['coarse']).sum())}/{len(a)} "
                    "ReLU outputs",
           note=f"per-channel better on {int((w['fine'] < w['coarse']).sum())}/{len(w)} weight tensors, "
                f"asymmetric better on {int((a['fine'] < a['coarse']).sum())}/{len(a)} ReLU outputs")

    q8, q4, qlow = pq[pq.bits == 8], pq[pq.bits == 4], pq[pq.bits == min(preset.qat_bits)]
    cmp8, cmp4 = compare(list(q8["QAT"]), list(q8["PTQ"])), compare(list(q4["QAT"]), list(q4["PTQ"]))
    cmp_low = compare(list(qlow["QAT"]), list(qlow["PTQ"]))
    record("S1-qat-vs-ptq", **common, data=data + "; LeNet-300-100",
           measured={f"bits{b}": {"QAT": float(pq[pq.bits == b]["QAT"].mean()),
                                  "PTQ": float(pq[pq.bits == b]["PTQ"].mean())} for b in preset.qat_bits}
           | {"seeds": seeds},
           parts=[Part.observed("QAT not below PTQ beyond the noise at 8 bits",
                                        cmp8.diff >= -NOISE_K * cmp8.stderr),
                  Part.compared("QAT above PTQ at 4 bits", cmp4)],
           headline=f"QAT / PTQ accuracy: {cmp8.mean_a:.4f} / {cmp8.mean_b:.4f} at 8 bits, {cmp4.mean_a:.4f} / "
                    f"{cmp4.mean_b:.4f} at 4 bits, {cmp_low.mean_a:.4f} / {cmp_low.mean_b:.4f} at "
                    f"{min(preset.qat_bits)} bits",
           note=f"same training budget; the claim's check is at 8 and 4 bits: {cmp4.text()} at 4 bits; "
                f"at {min(preset.qat_bits)} bits: {cmp_low.text()}")

    if int8 is not None:
        ort_ok = int8[(int8.threads == max(preset.int8_threads)) & int8.error.isna() & (int8.cos_mean >= 0.99)
                      & int8.backend.str.startswith("ort")]
        best = ort_ok.sort_values("speedup").iloc[-1]
        acc_change = 100 * (best["acc_int8"] - best["acc_fp32"])
        record("T2-ssd-int8", **common,
               data="MobileFaceNet-ReLU512 + linear head on digits at 112x112 (not SSD on COCO)",
               measured={"config": best["config"], "acc_fp32": float(best["acc_fp32"]),
                         "acc_int8": float(best["acc_int8"]), "fp32_ms": float(best["fp32_ms"]),
                         "int8_ms": float(best["int8_ms"]), "speedup": float(best["speedup"]),
                         "cos_mean": float(best["cos_mean"])},
               parts=[Part.observed("INT8 accuracy within 1 point of FP32", acc_change >= -1.0),
                      Part("INT8 faster than FP32 (log latency ratio)", math.log(best["speedup"]),
                                   float(best["speedup_log_se"]))],
               headline=f"accuracy {best['acc_fp32']:.4f} (FP32) → {best['acc_int8']:.4f} (INT8), "
                        f"{best['speedup']:.2f}x faster (onnxruntime, {max(preset.int8_threads)} threads)",
               note=f"fastest onnxruntime configuration with cosine >= 0.99 to FP32: accuracy change "
                    f"{acc_change + 0.0:+.1f} points, {best['speedup']:.2f}x faster than onnxruntime FP32 at batch 1, "
                    f"{max(preset.int8_threads)} threads")
    return pd.DataFrame([{"claim": r["claim_id"], **row} for r in load_results()
                         if r["chapter"] == chapter and r["scale"] == scale
                         for row in parts_table(parts_from_json(r["parts"]))])
