# Makes the Hydra conf tree importable as the package ``compoptim.conf`` (see pyproject),
# so ``pkg://compoptim.conf`` finds it in editable and regular installs alike.
