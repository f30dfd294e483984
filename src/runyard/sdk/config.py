"""``Config``: the run's hyperparameters, a nested plain structure with attribute access.

Whatever the user hands over (dict, OmegaConf DictConfig/ListConfig, dataclass,
argparse.Namespace, or an object with ``__dict__``) is converted once to plain, resolved
Python containers, so that the store and the dashboard always see JSON-able nested data.
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from runyard.errors import UsageError
from runyard.limits import MAX_DEPTH


class ConfigError(UsageError):
    """A config value cannot be stored (a missing ``???`` value, an unsupported type...)."""


def to_plain(value: Any, path: str = "", level: int = 1) -> Any:
    """Convert ``value`` to nested dicts/lists/scalars; resolve OmegaConf interpolations.

    ``level`` is the nesting level ``value`` sits at in its document (a config itself is level
    1, a dict in it level 2): a dict or list past :data:`runyard.limits.MAX_DEPTH` is a
    ``ConfigError`` naming where, before Python's recursion limit or the JSON encoder's is hit.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, ConfigView):
        return to_plain(value._data, path, level)
    omegaconf_plain = _from_omegaconf(value, path, level)
    if omegaconf_plain is not _NOT_OMEGACONF:
        return omegaconf_plain
    if level > MAX_DEPTH and isinstance(value, Mapping | list | tuple | set | frozenset):
        raise _too_deep(path)
    inner = level + 1
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, _join(path, str(k)), inner) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v, f"{path}[{i}]", inner) for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return [to_plain(v, path, inner) for v in sorted(value, key=repr)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if level > MAX_DEPTH:
            raise _too_deep(path)
        return {
            f.name: to_plain(getattr(value, f.name), _join(path, f.name), inner)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, argparse.Namespace):
        return to_plain(vars(value), path, level)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return to_plain(item(), path, level)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return to_plain(tolist(), path, level)
    if hasattr(value, "__fspath__"):
        return str(value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    raise ConfigError(
        f"runyard.config: cannot store {type(value).__name__} at {path or '<root>'!r}; "
        f"use numbers, strings, bools, None, lists and dicts (or str() the value)"
    )


def _too_deep(path: str) -> ConfigError:
    shown = path if len(path) <= 120 else path[:120] + "..."
    return ConfigError(
        f"runyard.config: the value at {shown or '<root>'!r} is nested more than {MAX_DEPTH} "
        f"levels deep (runyard.limits.MAX_DEPTH); flatten it (e.g. 'a.b.c' keys), or save "
        f"deep structures as a file with run.save()"
    )


_NOT_OMEGACONF = object()


def _from_omegaconf(value: Any, path: str, level: int = 1) -> Any:
    module = type(value).__module__
    if not module.startswith("omegaconf"):
        return _NOT_OMEGACONF
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    if not isinstance(value, DictConfig | ListConfig):
        return _NOT_OMEGACONF
    missing = _missing_keys(value, path)
    if missing:
        raise ConfigError(
            "runyard.config: mandatory value(s) missing (???): "
            + ", ".join(missing)
            + ". Set them in the config or on the command line (e.g. "
            + f"`{missing[0]}=...`)."
        )
    try:
        plain = OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:  # pragma: no cover - caught by _missing_keys first
        raise ConfigError(f"runyard.config: missing mandatory value: {exc}") from None
    except InterpolationResolutionError as exc:
        raise ConfigError(
            f"runyard.config: cannot resolve an interpolation under {path or '<root>'!r}: {exc}"
        ) from None
    return to_plain(plain, path, level)


def _missing_keys(value: Any, path: str) -> list[str]:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    found: list[str] = []
    if isinstance(value, DictConfig):
        if value._is_missing():
            return [path or "<root>"]
        for key in value:
            child_path = _join(path, str(key))
            if OmegaConf.is_missing(value, key):
                found.append(child_path)
                continue
            child = value._get_node(key)
            if isinstance(child, DictConfig | ListConfig):
                found.extend(_missing_keys(child, child_path))
    elif isinstance(value, ListConfig):
        if value._is_missing():
            return [path or "<root>"]
        for i in range(len(value)):
            child_path = f"{path}[{i}]"
            if OmegaConf.is_missing(value, i):
                found.append(child_path)
                continue
            item = value._get_node(i)
            if isinstance(item, DictConfig | ListConfig):
                found.extend(_missing_keys(item, child_path))
    return found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _wrap(value: Any, root: Config, path: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return ConfigView(value, root, path)
    return value


class ConfigView(MutableMapping[str, Any]):
    """A nested section of a ``Config``: item and attribute access, ``**``-unpackable.

    Writes go through the owning ``Config`` so they are recorded like ``config.update``.
    """

    __slots__ = ("_data", "_path", "_root")

    def __init__(self, data: dict[str, Any], root: Config, path: tuple[str, ...]) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_path", path)

    def __getitem__(self, key: str) -> Any:
        return _wrap(self._data[key], self._root, (*self._path, key))

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            dotted = ".".join((*self._path, key))
            raise AttributeError(f"config has no key {dotted!r}") from None

    def __setitem__(self, key: str, value: Any) -> None:
        self._root._set_path((*self._path, key), value, allow_val_change=True)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delitem__(self, key: str) -> None:
        self._root._delete_path((*self._path, key))

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return repr(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ConfigView):
            return bool(self._data == other._data)
        if isinstance(other, Mapping):
            return bool(self._data == dict(other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def as_dict(self) -> dict[str, Any]:
        """A deep copy of this section as plain dicts and lists."""
        import copy

        return copy.deepcopy(self._data)


class Config(ConfigView):
    """The run's config (``run.config``, ``runyard.config``).

    ``update(d, allow_val_change=False)`` refuses to change an existing key's value silently:
    pass ``allow_val_change=True`` to mean it. Item and attribute assignment mean it already.
    """

    __slots__ = ("_locked", "_on_change")

    def __init__(self, data: Any = None, on_change: Callable[[dict[str, Any]], None] | None = None):
        plain = to_plain(data) if data is not None else {}
        if not isinstance(plain, dict):
            raise ConfigError(
                f"runyard.config: the config must be a mapping, got {type(data).__name__}"
            )
        super().__init__(plain, self, ())
        object.__setattr__(self, "_on_change", on_change)
        object.__setattr__(self, "_locked", {})

    def lock(self, data: Mapping[str, Any], reason: str) -> None:
        """Lock the keys of ``data`` (e.g. a sweep's parameters): later changes are ignored.

        A sweep's values must win over whatever the program later writes into its config
        (``config.update(cfg)`` with the defaults), as in W&B; each ignored change warns.
        """
        for path in _leaf_paths(to_plain(data), ()):
            self._locked[path] = reason

    def _drop_locked(self, incoming: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for key in list(incoming):
            path = (*prefix, key)
            if path in self._locked:
                if _get_path(self._data, path) != incoming[key]:
                    warnings.warn(
                        f"runyard.config: {'.'.join(path)} is set by the {self._locked[path]} "
                        f"({_get_path(self._data, path)!r}); the change to {incoming[key]!r} "
                        f"was ignored",
                        stacklevel=4,
                    )
                del incoming[key]
            elif isinstance(incoming[key], dict):
                self._drop_locked(incoming[key], path)

    def _attach(self, on_change: Callable[[dict[str, Any]], None] | None) -> None:
        object.__setattr__(self, "_on_change", on_change)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._data)

    def update(  # type: ignore[override]
        self, data: Any = None, allow_val_change: bool = False, **kwargs: Any
    ) -> None:
        """Merge ``data`` (any accepted config type) into the config, recursively."""
        incoming = to_plain(data) if data is not None else {}
        if not isinstance(incoming, dict):
            raise ConfigError(
                f"runyard.config.update: expected a mapping, got {type(data).__name__}"
            )
        incoming.update(to_plain(kwargs))
        if self._locked:
            self._drop_locked(incoming, ())
        if not allow_val_change:
            conflicts = _conflicts(self._data, incoming, "")
            if conflicts:
                shown = "; ".join(conflicts[:5])
                raise ConfigError(
                    f"runyard.config.update: would change existing value(s): {shown}. "
                    f"Pass allow_val_change=True to change them."
                )
        _merge(self._data, incoming)
        self._changed()

    def setdefaults(self, data: Mapping[str, Any]) -> None:
        """Add keys of ``data`` that are not set yet; existing values are kept."""
        incoming = to_plain(data)
        merged = _merge({}, incoming)
        _merge(merged, self._data)
        self._data.clear()
        self._data.update(merged)
        self._changed()

    def _set_path(self, path: tuple[str, ...], value: Any, allow_val_change: bool) -> None:
        value = to_plain(value, ".".join(path), len(path) + 1)
        if self._locked:
            probe: dict[str, Any] = {}
            node_probe = probe
            for key in path[:-1]:
                node_probe = node_probe.setdefault(key, {})
            node_probe[path[-1]] = value
            self._drop_locked(probe, ())
            if not _leaf_paths(probe, ()):
                return
            value = _get_path(probe, path)
            if isinstance(value, dict):
                # Locked leaves under this key keep their values (assigning a whole section
                # must not overwrite the sweep's parameters inside it).
                for locked in self._locked:
                    if len(locked) > len(path) and locked[: len(path)] == path:
                        inner: Any = value
                        for key in locked[len(path) : -1]:
                            inner = inner.setdefault(key, {})
                        inner[locked[-1]] = _get_path(self._data, locked)
        node = self._data
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[path[-1]] = value
        self._changed()

    def _delete_path(self, path: tuple[str, ...]) -> None:
        node = self._data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        self._changed()

    def __setattr__(self, key: str, value: Any) -> None:
        if key in Config.__slots__ or key in ConfigView.__slots__:
            object.__setattr__(self, key, value)
        else:
            self._set_path((key,), value, allow_val_change=True)


def _leaf_paths(data: Any, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    if isinstance(data, dict) and data:
        out: list[tuple[str, ...]] = []
        for key, value in data.items():
            out.extend(_leaf_paths(value, (*prefix, key)))
        return out
    return [prefix] if prefix else []


def _get_path(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _conflicts(current: dict[str, Any], incoming: dict[str, Any], prefix: str) -> list[str]:
    out: list[str] = []
    for key, new in incoming.items():
        if key not in current:
            continue
        old = current[key]
        path = prefix + key
        if isinstance(old, dict) and isinstance(new, dict):
            out.extend(_conflicts(old, new, path + "."))
        elif old != new:
            out.append(f"{path}: {old!r} -> {new!r}")
    return out


def _merge(target: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    for key, value in incoming.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target
