"""Formats: reading and writing nngsec's files and text, with no keys and no policy rules.

YAML with positions, pydantic errors as placed problems, the strict base model and the
format-version check, durations and sizes, the name rule, typed base64url text, atomic
writes, and the domain-separation labels. Everything else builds on this; it imports
nothing of nngsec but the exception tree.
"""
