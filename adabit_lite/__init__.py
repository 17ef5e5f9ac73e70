"""adabit_lite: learnable bit allocation for spiking neural networks (Yao et al., arXiv 2506.23717)."""
