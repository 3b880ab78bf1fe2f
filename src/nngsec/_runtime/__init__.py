"""The runtime: everything a running node does per frame.

Wire format, replay windows, schemes, the channel codec, the :class:`Node`, secured sockets,
the reply cache and asynchronous waiting. It reads policies and keys; nothing below it
(``_keys``, ``_policy``, the formats) imports from here, and the checker does not either.
"""
