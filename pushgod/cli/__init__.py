"""The `pushgod` command."""
