"""Lazily imported package names: a package lists ``{name: module}`` and imports a module on first use."""
import importlib


def lazy_exports(package, exports):
    """``(__getattr__, __all__)`` for ``package`` whose public ``exports`` (``{name: submodule}``) are imported
    from ``package.<submodule>`` when first looked up (keeps ``import spkrec.<package>`` cheap)."""
    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__, sorted(exports)
