"""The djtasks benchmark runner (``bench/run.py``): contestants, workloads, report."""
