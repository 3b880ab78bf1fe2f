"""The version of nngsec and where the project lives: the one place each is written
(pyproject.toml reads the version from here; a test keeps its URLs equal to these)."""

__version__ = "0.1.0"

PROJECT_URL = "https://github.com/nngsec/nngsec"
DOCS_URL = f"{PROJECT_URL}/tree/main/docs"
RULES_URL = f"{PROJECT_URL}/blob/main/docs/rules.md"  # one anchor per rule: #rule-id
