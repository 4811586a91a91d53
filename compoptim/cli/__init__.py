"""Console entry points: compoptim-run and compoptim-report."""
