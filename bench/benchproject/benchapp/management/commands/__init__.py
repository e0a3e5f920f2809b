"""``bench_enqueue`` and ``bench_status``."""
