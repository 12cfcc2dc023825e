"""The benchmarks: `python -m bench.<name>` from the project's folder; each has `--quick`, which CI runs."""
