"""The places a deletion reaches, each behind the one `Target` protocol of `base.py`."""
