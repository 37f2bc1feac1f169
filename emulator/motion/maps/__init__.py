"""Shipped point maps (TOML): input point names -> model landmarks and segments."""
