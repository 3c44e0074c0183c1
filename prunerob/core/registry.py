"""A small name -> object registry, in the style of timm's ``register_model``.

Pruning methods (:mod:`prunerob.core.pruning`) and attacks (:mod:`prunerob.core.attacks`) are registered
under their name by a decorator in the module that defines them; command-line choices, ``--help``
texts, validation and plotting labels are read from the registry. Looking up a name that is not
registered raises one :class:`~prunerob.config.ConfigError` that lists the registered names, so
there is no fall-through branch anywhere::

    METHODS = Registry("method", "pruning method")

    @METHODS.register("magnitude")
    class Magnitude(PruningMethod): ...

    METHODS.get("magnitude")     # the registered object (a class is instantiated once)
    METHODS.get("snip")          # ConfigError: method='snip' is not a registered pruning method; ...
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from prunerob.config import ConfigError

__all__ = ["Registry", "import_submodules"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Ordered mapping ``name -> object`` filled by :meth:`register`.

    ``param`` is the parameter name used in error messages (``"method"``, ``"attack"``), ``kind``
    what the objects are (``"pruning method"``). Registering a class stores one instance of it
    (created without arguments), so ``get`` always returns a ready object. The registered object
    gets its ``name`` attribute set to the registered name.
    """

    def __init__(self, param: str, kind: str | None = None) -> None:
        self.param = param
        self.kind = kind or param
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        _REGISTRIES[param] = self

    def register(self, name: str, *, replace: bool = False) -> Callable[[Any], Any]:
        """Decorator registering a class (stored as an instance) or an object under ``name``.

        ``replace=False`` (default) refuses a name that is already registered. The decorated
        class or object is returned unchanged, so the decorator can be stacked or used as a
        plain call: ``REG.register("toy")(ToyMethod())``.
        """
        if not isinstance(name, str) or not name or name != name.strip().lower():
            raise ConfigError(f"{self.param} name {name!r} must be a non-empty lower-case string, no spaces")

        def deco(obj: Any) -> Any:
            if name in self._items and not replace:
                raise ConfigError(f"{self.kind} {name!r} is already registered (replace=True overrides)")
            item = obj() if isinstance(obj, type) else obj
            try:
                item.name = name
            except AttributeError:  # e.g. a function with read-only attributes: keep it as is
                pass
            self._items[name] = item
            self._origins[name] = str(getattr(obj, "__module__", None) or type(obj).__module__)
            return obj

        return deco

    def origin(self, name: str) -> str:
        """Dotted name of the module that registered ``name`` (its code enters the result-store
        keys of the units that use it, :mod:`prunerob.engine.codehash`)."""
        self.get(name)
        return self._origins[name]

    def origins(self) -> dict[str, str]:
        """Every registered name -> the module that registered it."""
        return dict(self._origins)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests that register toys); unknown names raise ConfigError."""
        self.get(name)
        del self._items[name]
        self._origins.pop(name, None)

    def get(self, name: str) -> T:
        """The object registered as ``name``; otherwise one ConfigError listing the registered names."""
        key = name.strip().lower() if isinstance(name, str) else name
        try:
            return self._items[key]
        except (KeyError, TypeError):
            raise ConfigError(
                f"{self.param}={name!r} is not a registered {self.kind}; registered: {', '.join(self._items)}"
            ) from None

    def names(self) -> tuple[str, ...]:
        """Registered names in registration order."""
        return tuple(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def choices_help(self, what: str, default: str | None = None) -> str:
        """``--help`` text listing every registered name with its one-line ``help`` attribute,
        e.g. ``"comma-separated attacks: fgsm: one signed-gradient step ...; pgd: ...; default fgsm"``."""
        items = "; ".join(
            f"{n}: {getattr(o, 'help', '')}" if getattr(o, "help", "") else n for n, o in self._items.items()
        )
        tail = f"; default {default}" if default is not None else ""
        return f"comma-separated {what}: {items}{tail}"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self._items)})"


#: every registry by its parameter name (``method``, ``attack``, ``arch``), filled as they are made
_REGISTRIES: dict[str, Registry] = {}


def registered(param: str) -> Registry | None:
    """The registry of ``param`` (``"method"``, ``"attack"``, ``"arch"``) once its package has been
    imported, else None. Torch-free: the rendering layer reads legend labels through it."""
    return _REGISTRIES.get(param)


def label_of(param: str, name: str) -> str:
    """The ``label`` of ``name`` in the registry of ``param``; the name itself when the registry is
    not loaded or has no such entry (e.g. ``algorithm1`` in a legend)."""
    reg = _REGISTRIES.get(param)
    item = reg._items.get(name) if reg is not None else None
    return str(getattr(item, "label", "") or name)


def import_submodules(package: str) -> list[str]:
    """Import every module of ``package`` whose name does not start with ``_``, in sorted order.

    The registering packages (:mod:`prunerob.core.pruning`, :mod:`prunerob.core.attacks`) call this after
    importing their built-in modules in a fixed order, so a new method or attack is one new file
    in the package (plus its test): its decorator registers it when the package is imported, after
    the built-ins. Returns the names of the modules imported by this call.
    """
    pkg = importlib.import_module(package)
    new = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        full = f"{package}.{info.name}"
        if info.name.startswith("_"):
            continue
        if full not in sys.modules:
            new.append(info.name)
        importlib.import_module(full)
    return new
