"""compoptim's Hydra plugins (in Hydra's ``hydra_plugins`` namespace, where Hydra looks).

- ``hydra/launcher=mpi``: every sweep job runs as its own ``mpirun -np N compoptim-run``.
- ``hydra/sweeper=rank_zero``: Hydra's basic sweeper for ``mpirun ... compoptim-run -m``,
  writing the sweep-level files from rank 0 only.
- ``hydra/launcher=submitit_slurm_mpi`` (with ``compoptim[slurm]``): every sweep job is a
  SLURM job whose tasks are the run's MPI ranks; the sweep asks SLURM how each job ended.
"""
