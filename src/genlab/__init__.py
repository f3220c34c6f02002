"""genlab: train, sample and evaluate generative models of small images.

Conventions, said once for the whole package:

* Images are float tensors of shape (N, C, H, W) with values in [-1, 1]; datasets are held in memory
  as uint8 and converted per batch on the training device.
* Energy-based models define p(x) proportional to exp(-E(x)): low energy means likely. Samplers descend
  E; training pushes the energy of data down and the energy of samples up.
"""

__version__ = "0.1.0"
