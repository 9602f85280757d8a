"""The 3×3 Sobel responses shared by several metrics (Qabf, EI, Qcv, Qe, FMI_edge).

One separable computation serves every metric whose evaluator forms the
Sobel sums in the same order: each 1-2-1 sum is ``(a + 2b) + c``, then one
difference. Padding is per caller: zeros (MATLAB's ``conv2``/``filter2``
'same', SciPy's ``convolve2d``), replicated borders (``imfilter(...,
'replicate')``) or none ('valid').

Callers that only use magnitudes or absolute values (all but Qabf's
orientation) do not see the sign convention; correlation (``filter2``,
``imfilter``) instead of convolution (``conv2``) only flips signs, and
``x − y`` is exactly ``−(y − x)``, so every such caller gets the same bits
as its own kernel orientation would give.

Deliberately not here: the ``paper`` Qabf (:mod:`jaxfuse.metrics.gradient`
adds the terms in Octave's ``conv2`` order on x/255 values, where the order
decides exact ties) and Kumar's Sobel of Nabf (mirrored borders, MATLAB's
``sum(sum(...))`` order, /8).
"""

from __future__ import annotations

import numpy as np


def sobel(x: np.ndarray, pad: str | None = "constant"):
    """``(Sx, Sy)`` of ``conv2(x, [-1 0 1; -2 0 2; -1 0 1])`` and ``conv2(x, [1 2 1; 0 0 0; -1 -2 -1])``.

    True convolution: ``Sx = left − right`` and ``Sy = bottom − top`` of the
    column/row sums weighted 1, 2, 1, in ``x``'s float dtype.

    Args:
      x: a 2-D float array (float32 stays float32).
      pad: ``np.pad`` mode for the one-pixel border (``"constant"``: zeros,
        ``"edge"``: replicated), or None for the 'valid' responses
        (``(H − 2)×(W − 2)``).
    """
    q = x if pad is None else np.pad(x, 1, mode=pad)
    h, w = q.shape[0] - 2, q.shape[1] - 2
    col = q[:-2, :] + 2.0 * q[1:-1, :]
    col += q[2:, :]  # vertical 1-2-1, width w + 2
    row = q[:, :-2] + 2.0 * q[:, 1:-1]
    row += q[:, 2:]  # horizontal 1-2-1, height h + 2
    return col[:, :w] - col[:, 2:], row[2:, :] - row[:h, :]
