"""Policy files: model, loading with positions, cross-checks, signing and edits."""
