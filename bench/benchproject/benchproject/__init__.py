"""Django project used by the djtasks benchmark suite (``bench/run.py``)."""
