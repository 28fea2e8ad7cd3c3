"""Attack suite (issue 12, item 7; issue 22): bad values for every Config field (by path, with the groups), the share
codes, the activation parser, every public function of `workbench` (generated from its declarations:
test_declared), the run database and a training run's data, judged by `oracle`."""
