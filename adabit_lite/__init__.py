"""adabit_lite: learnable bit allocation for spiking neural networks (Yao et al., arXiv 2506.23717).

``ALGORITHM_VERSION`` is bumped whenever a change alters computed numbers; stored results carry it
in their key, and a result from another version is never reused.
"""

__version__ = "0.1.0"
ALGORITHM_VERSION = 2
