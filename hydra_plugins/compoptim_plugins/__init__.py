"""compoptim's Hydra plugins (in Hydra's ``hydra_plugins`` namespace, where Hydra looks).

- ``hydra/launcher=mpi``: every sweep job runs as its own ``mpirun -np N compoptim-run``.
- ``hydra/sweeper=rank_zero``: Hydra's basic sweeper for ``mpirun ... compoptim-run -m``,
  writing the sweep-level files from rank 0 only.
"""
