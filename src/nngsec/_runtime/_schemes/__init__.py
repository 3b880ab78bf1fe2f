"""The per-message schemes, one module each, behind :class:`SchemeCodec` (``_base.py``)."""
