"""The PyTorch train step in a process of its own, as PyTorch runs it out of the box.

    python torch_train.py WEIGHTS {nchw,channels_last} {ssim,msssim} THREADS REPS SIZE LR {0,1}

The benchmark runs it with ``JAXFUSE_MALLOC=default``, so glibc's malloc keeps
its defaults (in the benchmark's own process PyTorch shares the settings
``python -m jaxfuse.bench`` applies first thing, as ``train.py`` does). The network and losses are those of
:class:`jaxfuse.bench.torch_side.TorchSide`; prints one JSON line: the
allocator in use, the first loss and every timed step in seconds.
"""
import json
import sys
import time

import torch

from jaxfuse import allocator, training
from jaxfuse.bench.torch_side import TorchSide

weights, fmt, kind, threads, reps, size, lr, shared = sys.argv[1:9]
side = TorchSide(None, int(threads), state_dict=torch.load(weights, weights_only=True, map_location="cpu"),
                 shared=shared == "1")
step, losses = side.train_fn(fmt, training.load_training_image(None, int(size)), kind, float(lr))
step()  # warm-up, as the in-process timing
times = []
for _ in range(int(reps)):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
print(json.dumps({"malloc": allocator.describe(), "first_loss": losses[0], "times_s": times}))
