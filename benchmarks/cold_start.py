"""Cold-start cost of Lite0 training steps on a GPU, per precision / memory format / cuDNN setting.

Why: on an H200 (torch 2.11 + CUDA 13, 2026-11-26) edgetl's first epoch of phase B took 9.1 s and
of phase C 13.5 s against 0.5-0.9 s for every later epoch: the first call of each new convolution
shape pays a one-off cost (cuDNN 9 builds execution plans at run time, slowest for depthwise
convolutions). This script measures, in a fresh process per variant, the first steps and the
steady-state step of the same training step, so the recipe defaults can be chosen on numbers.

    for v in bf16-cl bf16-nchw fp16-cl fp32-cl bf16-cl-nocudnn; do
        python benchmarks/cold_start.py --variant $v; done
Prints one JSON line per variant (model random-initialised: no weights needed).
"""

from __future__ import annotations

import argparse
import json
import time

import timm
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="bf16-cl")
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    variant, dev = args.variant, args.device
    t_start = time.perf_counter()
    if "nocudnn" in variant:
        torch.backends.cudnn.enabled = False
    if "benchmark" in variant:
        torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(variant.split("-")[0])
    layout = torch.channels_last if "-cl" in variant else torch.contiguous_format
    model = timm.create_model(args.model, num_classes=2).to(dev).to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    x = torch.randn(args.batch, 3, 224, 224, device=dev).contiguous(memory_format=layout)
    y = torch.randint(0, 2, (args.batch,), device=dev)

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    def step() -> None:
        with torch.autocast(dev, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    sync()
    setup_s = time.perf_counter() - t_start
    firsts = []
    for _ in range(3):
        t0 = time.perf_counter()
        step()
        sync()
        firsts.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    steady = (time.perf_counter() - t0) / args.steps
    # A forward-only call at another batch size (an evaluation tail): a new shape again.
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad(), torch.autocast(dev, dtype=dtype or torch.float32,
                                         enabled=dtype is not None):
        model(torch.randn(37, 3, 224, 224, device=dev).contiguous(memory_format=layout))
    sync()
    new_shape_eval = time.perf_counter() - t0
    print(json.dumps({
        "variant": variant, "model": args.model, "batch": args.batch, "device": dev,
        "gpu": torch.cuda.get_device_name(0) if dev == "cuda" else None,
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version() if dev == "cuda" else None,
        "setup_s": round(setup_s, 3), "first_steps_s": [round(f, 3) for f in firsts],
        "steady_step_ms": round(steady * 1000, 2),
        "steady_images_per_s": round(args.batch / steady),
        "new_batch_size_eval_forward_s": round(new_shape_eval, 3),
    }))


if __name__ == "__main__":
    main()
