"""Many counties at once on Dask: the runs and the province summary."""
