"""The PyTorch side of the whole-process timing: fuses every ir/vis PNG pair of a folder.

    python torch_fuse.py PAIRS OUT WEIGHTS {nchw,channels_last} THREADS {0,1}

PIL in, the authors' uint8 output step, PNG out; the network is
:mod:`jaxfuse.bench.torch_baseline` (last argument: 1 for the shared Res2Net conv).
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

from jaxfuse.bench.torch_baseline import TorchRes2NetFuse, to_uint8

pairs, out, weights, fmt, threads, shared = sys.argv[1:7]
torch.set_num_threads(int(threads))
mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
net = TorchRes2NetFuse(shared=shared == "1")
net.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
net = net.eval().to(memory_format=mf)
os.makedirs(out, exist_ok=True)
n = 0
with torch.inference_mode():
    for name in sorted(os.listdir(os.path.join(pairs, "ir"))):
        if not name.lower().endswith(".png"):
            continue
        ir = np.asarray(Image.open(os.path.join(pairs, "ir", name)).convert("L"), np.float32)
        vis = np.asarray(Image.open(os.path.join(pairs, "vis", name)).convert("L"), np.float32)
        x1 = torch.from_numpy(ir)[None, None].contiguous(memory_format=mf)
        x2 = torch.from_numpy(vis)[None, None].contiguous(memory_format=mf)
        fused = to_uint8(net.fuse(x1, x2, "l1"))[0, 0].numpy()
        Image.fromarray(fused).save(os.path.join(out, name))
        n += 1
print(f"fused {n} pair(s)")
