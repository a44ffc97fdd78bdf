"""Size the chapter-06 trainings on a lent GPU: training images/s of the planned teachers and student (bf16
autocast, channels-last, data on the GPU, margin logits in fp32) at 64 and 112 px, and the synthetic-face
rendering rate on the machine's CPUs. Usage: python3 .ci/gpu_probe_nist.py OUT.json"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

from faceopt.data.synthetic_faces import SyntheticFaces
from faceopt.models import get_model
from faceopt.recognition.heads import FaceRecognizer, MarginHead
from faceopt.recognition.margin_warmup import MarginWarmupLoss

MODELS = (("iresnet100", {"width": 0.5}), ("iresnet50", {"width": 0.5}), ("iresnet100", {"width": 1.0}),
          ("mobiface_x2_swish_se_gdc", {}))


def rate(name: str, options: dict, size: int, batch: int = 256, steps: int = 30, classes: int = 2000) -> float:
    side = (size, size) if name.startswith("mobi") else size
    net = get_model(name, input_size=side, **options)
    model = FaceRecognizer(net, MarginHead(512, classes), MarginWarmupLoss(64.0, 0.5, 0.5, 0)).cuda()
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device="cuda")
    for i in range(steps + 5):
        if i == 5:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main(out: str) -> None:
    report: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cpus": os.cpu_count(), "train": {}}
    for name, opts in MODELS:
        for size in (64, 112):
            key = f"{name} {opts} @{size}"
            try:
                report["train"][key] = round(rate(name, opts, size))
            except Exception as exc:  # noqa: BLE001 - a probe reports what failed and goes on
                report["train"][key] = f"{type(exc).__name__}: {exc}"
            print(key, report["train"][key], flush=True)
    for size in (64, 112):
        faces = SyntheticFaces(100, 20, size=size, seed=0, workers=os.cpu_count())
        t0 = time.perf_counter()
        faces.batch(np.arange(2000))
        report[f"render_images_per_s@{size}"] = round(2000 / (time.perf_counter() - t0))
        print("render", size, report[f"render_images_per_s@{size}"], flush=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
