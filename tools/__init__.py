"""Command-line tools that work on finished (or running) experiment log dirs."""
