"""The one app of the benchmark project: the same tiny task for every contestant."""
