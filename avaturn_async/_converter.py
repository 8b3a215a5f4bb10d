"""The one cattrs converter that reads and writes every model.

Set up by small functions, each registering one rule:

* primitives are checked, not coerced (``"12"`` is not an ``int``, ``12`` is not a ``str``);
* ``SomeEnum | str`` fields keep unknown values as plain strings (lenient reading);
* ``AvatarListItem`` keeps the fields it does not know in ``extra``;
* session configs are a union discriminated by ``type``;
* writing drops fields that are ``None`` so that nothing unset is sent.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn

from . import _models as m

__all__ = ["converter", "describe_error", "structure", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
_Unstructure = Callable[[Any], dict[str, Any]]


def _check_primitives(conv: cattrs.Converter) -> None:
    def structure_str(value: Any, _: type) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value

    def structure_float(value: Any, _: type) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return float(value)

    def structure_int(value: Any, _: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return value

    def structure_bool(value: Any, _: type) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected a boolean, got {type(value).__name__}")
        return value

    conv.register_structure_hook(str, structure_str)
    conv.register_structure_hook(float, structure_float)
    conv.register_structure_hook(int, structure_int)
    conv.register_structure_hook(bool, structure_bool)


def _open_enum_parts(tp: Any) -> tuple[type[enum.Enum], bool] | None:
    """For ``E | str`` or ``E | str | None``: (E, optional); otherwise None."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    members = typing.get_args(tp)
    optional = type(None) in members
    rest = [a for a in members if a is not type(None)]
    enums = [a for a in rest if isinstance(a, type) and issubclass(a, enum.Enum)]
    return (enums[0], optional) if len(rest) == 2 and len(enums) == 1 and str in rest else None


def _keep_unknown_enum_values(conv: cattrs.Converter) -> None:
    def make_hook(tp: Any) -> Callable[[Any, Any], Any]:
        parts = _open_enum_parts(tp)
        assert parts is not None
        enum_type, optional = parts

        def structure_open_enum(value: Any, _: Any) -> Any:
            if value is None and optional:
                return None
            if not isinstance(value, str):
                raise TypeError(f"expected a string, got {type(value).__name__}")
            try:
                return enum_type(value)
            except ValueError:
                return value

        return structure_open_enum

    conv.register_structure_hook_factory(lambda tp: _open_enum_parts(tp) is not None, make_hook)


def _slot_writers(cls: type[Any], *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """Writers of a frozen slotted attrs class's slots, for building it on a hot path.

    ``object.__new__(cls)`` and one writer per field do what the frozen ``__init__``
    does through ``object.__setattr__``. That skips validators, converters,
    defaults and ``__attrs_post_init__``, so classes that have any of them, or
    fields not named here, are refused. Measured 2026-12-06, ``cls(...)`` instead
    took avatars.list from 10.4 to 11.9 us of the SDK's own CPU per call
    (``.venv/bin/python benchmarks/client.py --own --rounds 5 --calls 1500``,
    10 interleaved runs each, medians).
    """
    fields = attrs.fields(cls)
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} must be slotted, without __attrs_post_init__")
    if sorted(names) != sorted(field.name for field in fields):
        raise TypeError(f"{cls.__name__}: every field must be written, got {names}")
    for field in fields:
        if field.validator is not None or field.converter is not None:
            raise TypeError(f"{cls.__name__}.{field.name} needs its __init__")
    return tuple(cls.__dict__[name].__set__ for name in names)


def _keep_extra_fields(conv: cattrs.Converter, cls: type[Any]) -> None:
    """Structure ``cls`` (``id: str``, ``status: SomeEnum | str``), every other key in ``extra``.

    The common shape is read by hand (list answers hold many items: the hot path);
    anything unusual goes through cattrs for its field-path errors.
    """
    set_id, set_status, set_extra = _slot_writers(cls, "id", "status", "extra")  # no other field
    known = ("id", "status")
    status_type = _open_enum_parts(typing.get_type_hints(cls)["status"])
    statuses = {member.value: member for member in status_type[0]} if status_type else {}
    base = cattrs.gen.make_dict_structure_fn(cls, conv, extra=cattrs.override(omit=True))
    new = object.__new__

    def structure_with_extra(value: Any, _: type) -> Any:
        # ``type(...) is dict`` first: JSON gives dicts, and the ABC check costs more.
        if type(value) is not dict and not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        item_id, status = value.get("id"), value.get("status")
        if type(item_id) is str and type(status) is str:
            extra = dict(value)
            del extra["id"], extra["status"]
            item = new(cls)
            set_id(item, item_id)
            set_status(item, statuses.get(status, status))
            set_extra(item, extra)
            return item
        extra = {k: v for k, v in value.items() if k not in known}
        return attrs.evolve(base(value, cls), extra=extra)

    def unstructure_with_extra(obj: Any) -> dict[str, Any]:
        data = dict(obj.extra)
        for name in known:
            data[name] = conv.unstructure(getattr(obj, name))
        return data

    conv.register_structure_hook(cls, structure_with_extra)
    conv.register_unstructure_hook(cls, unstructure_with_extra)


def _photo_upload_result(conv: cattrs.Converter) -> None:
    def structure_upload(value: Any, _: type) -> m.PhotoUploadResult:
        if not isinstance(value, Mapping):
            return m.PhotoUploadResult(status=None, raw={"body": value})
        status = value.get("status")
        said = status if isinstance(status, str) else None
        return m.PhotoUploadResult(status=said, raw=dict(value))

    conv.register_structure_hook(m.PhotoUploadResult, structure_upload)
    conv.register_unstructure_hook(m.PhotoUploadResult, lambda obj: dict(obj.raw))


_SESSION_CONFIGS = {cls.type: cls for cls in typing.get_args(m.SessionConfig)}


def _discriminate_session_configs(conv: cattrs.Converter) -> None:
    def structure_config(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        kind = value.get("type")
        cls = _SESSION_CONFIGS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValueError(f"unknown session config type {kind!r}")
        return conv.structure({k: v for k, v in value.items() if k != "type"}, cls)

    conv.register_structure_hook(m.SessionConfig, structure_config)
    for cls in _SESSION_CONFIGS.values():
        fields_fn = make_dict_unstructure_fn(cls, conv)

        def unstructure_config(obj: Any, _fields: _Unstructure = fields_fn) -> Any:
            return {"type": obj.type, **_fields(obj)}

        conv.register_unstructure_hook(cls, unstructure_config)


def _omit_none_when_writing(conv: cattrs.Converter, *classes: type[Any]) -> None:
    for cls in classes:
        base = make_dict_unstructure_fn(cls, conv)

        def unstructure_without_none(obj: Any, _base: _Unstructure = base) -> dict[str, Any]:
            return {k: v for k, v in _base(obj).items() if v is not None}

        conv.register_unstructure_hook(cls, unstructure_without_none)


def _configure(conv: cattrs.Converter) -> None:
    _check_primitives(conv)
    _keep_unknown_enum_values(conv)
    _keep_extra_fields(conv, m.AvatarListItem)
    _photo_upload_result(conv)
    _discriminate_session_configs(conv)
    # Leaves first: a parent's generated function captures its children's hooks.
    _omit_none_when_writing(
        conv,
        m.AssetSlotWithColor,
        m.AssetSlots,
        m.BoneScale,
        m.ExternalAvatarCustomization,
        m.NewSessionResponse,
        m.RenderResult,
        m.NewExportResponse,
    )


_configure(converter)


def structure(data: Any, cls: type[T]) -> T:
    """Read ``data`` (parsed JSON) into ``cls``; raises cattrs errors on a mismatch."""
    return converter.structure(data, cls)


def unstructure(obj: Any) -> Any:
    """Write ``obj`` as JSON-ready data."""
    return converter.unstructure(obj)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(field path, message) for a structuring error, the first problem first."""
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        messages = cattrs.transform_error(exc)
        if messages:
            message, _, path = messages[0].rpartition(" @ ")
            return (path, message) if message else ("$", path)
    return "$", str(exc) or type(exc).__name__
