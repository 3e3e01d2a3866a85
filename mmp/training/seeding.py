"""One seed for python, numpy and (when it is installed and already used) torch."""

from __future__ import annotations

import random
import sys


def seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:  # never import torch just to seed it
        sys.modules["torch"].manual_seed(seed)
