"""What a run leaves behind: the run database, exported run files, sweeps on Dask."""

__all__: list[str] = []
