"""Secrets as a type and their registry, the leak guard over artifacts, and personal-data masking."""
