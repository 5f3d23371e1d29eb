"""The registry: what was fitted, from which data, with which files, and which version of each task is live."""

from adaptlab.registry.store import Registry, RegistryError, Version, default_registry, parse_ref

__all__ = ["Registry", "RegistryError", "Version", "default_registry", "parse_ref"]
