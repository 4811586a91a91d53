"""compoptim: decentralized training with compressed communication (PyTorch + MPI + Hydra)."""

__version__ = "0.1.0"
