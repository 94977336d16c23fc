"""What a sparse input costs: forward + backward time of one training step of the default preset's audio encoder
(log-mel frames of 2 s clips, batch 64) as the share of rows that have a sound falls. Encoders run only on the rows
where their input is present (``nn.model.encode_present``), so the cost should follow the share.

    taskset -c 0 .venv/bin/python benchmarks/sparse_inputs.py [threads]
"""

import sys
import time

import torch

from mmfuse.estimators import Predictor  # noqa: F401  (registers the built-in plugins)
from mmfuse.config import load_config
from mmfuse.nn.model import build_model

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
SPECS = {"sound": ("audio", {"in_features": 64}), "caption": ("text", {"vocab_size": 2000, "max_length": 16})}
cfg = load_config("default")
model = build_model({n: (cfg.encoder_for(n, kind), data) for n, (kind, data) in SPECS.items()}, 12, cfg.fusion.name,
                    cfg.fusion.params, cfg.head.model_dump(), cfg.modality_dropout).train()
batch, steps = 64, 20
frames = torch.randn(batch, 201, 65)
frames[..., -1] = 1.0
inputs = {"sound": frames, "caption": torch.randint(1, 2000, (batch, 16))}


def step_seconds(share: float) -> float:
    present = {"sound": torch.arange(batch) < round(share * batch)}
    model(inputs, present).logits.sum().backward()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        model.zero_grad()
        model(inputs, present).logits.sum().backward()
    return (time.perf_counter() - start) / steps


full = step_seconds(1.0)
print(f"| rows with a sound | step (forward + backward) | vs all rows |   ({threads} thread(s), batch {batch})")
print("|---|---|---|")
for share in (1.0, 0.5, 0.23, 0.0):
    seconds = full if share == 1.0 else step_seconds(share)
    print(f"| {share:.0%} | {1000 * seconds:.1f} ms | {seconds / full:.2f} |")
