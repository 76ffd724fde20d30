"""Command-line tools: the `mmchat` launcher and introspection commands."""
