"""Attack suite (issue 12, item 7): bad values for every Config field, the share codes, the activation parser,
the public functions of `workbench`, the run database and a training run's data, judged by `oracle`."""
