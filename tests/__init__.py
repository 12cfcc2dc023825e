"""The test suite: a package, so that the benchmarks import its fakes as `tests.fakes`."""
