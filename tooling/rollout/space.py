"""Every setting of every stack, and one valid changed value for each (pure; no cdktf).

Derived from the settings classes, never from a hand-kept list: a new field is checked the
day it is added. For each stack the walk starts from a *baseline* (the defaults, see
:func:`baseline_settings`) and yields one :class:`Change` per leaf setting: the field moved
to another value its own rules accept (bounds, literals, examples) that the whole stack's
settings also accept (cross-field rules). A discriminated union (``endpoint = {type = ...}``)
or an optional table (``scaling_target``) gives one more baseline per member, whose fields are
walked in turn, and a change *to* that member.

Values come from the field's type:

- ``bool``: the other one; ``Literal``: another member;
- numbers: a step inside ``ge``/``gt``/``le``/``lt`` (+1, -1, x2, /2, the bounds), or for
  ``LogRetentionDays`` the next allowed period;
- strings: the ``examples`` of the field (``Field(examples=...)``) or of its type (the
  ``_regex`` rules in modules/scaling_patterns/core/settings.py carry examples);
- lists and tables: one more element / key from the examples (or a generated tag);
- unset (``None``) values: the first example.

A change that no value makes valid on its own is retried with one unset sibling set to its
example (``create_event_bus = true`` with ``event_bus_name``): the companion is recorded.
"""

from __future__ import annotations

import copy
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app.config import ProjectSettings
from scaling_patterns.core.settings import LOG_RETENTION_DAYS, Settings, numeric_bounds

#: Settings that tooling sets, not users: never varied.
SKIPPED = {("project", "emulator")}

def baseline_settings(stack: str) -> dict[str, Any]:
    """Where the walk starts: the defaults, or what the pattern declares instead (``rollout_baseline``
    of its spec: a placeholder default cannot apply on AWS, so the check plans a real deployment)."""
    from scaling_patterns.registry import PATTERNS

    spec = next((p for p in PATTERNS if p.name == stack), None)
    return copy.deepcopy(spec.rollout_baseline) if spec is not None else {}


@dataclass(frozen=True)
class Baseline:
    stack: str
    id: str  # "default" or "<path>=<member>", e.g. "endpoint=existing"
    settings: dict[str, Any]  # the stack section, raw (as written in TOML)
    project: dict[str, Any]


@dataclass(frozen=True)
class Change:
    stack: str
    baseline: str
    setting: str  # dotted, as a user writes it: "endpoint.instance_type", "project.tags"
    before: Any
    after: Any
    settings: dict[str, Any]
    project: dict[str, Any]
    companions: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.stack, self.baseline, self.setting)


@dataclass(frozen=True)
class Unchangeable:
    """A setting for which no valid changed value was found (needs an example, or review)."""

    stack: str
    baseline: str
    setting: str
    why: str


@dataclass
class Space:
    baselines: list[Baseline] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    unchangeable: list[Unchangeable] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _strip(annotation: Any) -> tuple[Any, list[Any]]:
    """(bare type, Annotated metadata)."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation, metadata = args[0], metadata + list(args[1:])
    return annotation, metadata


def _union_args(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def _members(annotation: Any) -> tuple[list[type[BaseModel]], bool, list[Any]]:
    """(model members, allows None, other members) of a field annotation."""
    bare, _ = _strip(annotation)
    models, others, optional = [], [], False
    for arg in _union_args(bare):
        inner, _ = _strip(arg)
        if inner is type(None):
            optional = True
        elif _is_model(inner):
            models.append(inner)
        else:
            others.append(arg)
    return models, optional, others


def _metadata(field_info: FieldInfo, annotation: Any) -> list[Any]:
    items = list(field_info.metadata)
    for arg in [annotation, *_union_args(_strip(annotation)[0])]:
        items += _strip(arg)[1]
    return items


def _examples(field_info: FieldInfo, annotation: Any) -> list[Any]:
    found = list(field_info.examples or [])
    for item in _metadata(field_info, annotation):
        func = getattr(item, "func", None)
        found += list(getattr(func, "examples", ()) or ())
    return found


def _tag(model: type[BaseModel]) -> str | None:
    tag = model.model_fields.get("type")
    if tag is not None and typing.get_origin(tag.annotation) is Literal:
        return str(typing.get_args(tag.annotation)[0])
    return None


def _inside(value: float, low: float | None, high: float | None, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value < low or (low_open and value == low)):
        return False
    if high is not None and (value > high or (high_open and value == high)):
        return False
    return True


def candidates(field_info: FieldInfo, annotation: Any, current: Any) -> list[Any]:
    """Values to try for a leaf field, in order, all different from ``current``."""
    bare, _ = _strip(annotation)
    models, optional, others = _members(annotation)
    scalar = _strip(others[0])[0] if len(others) == 1 else bare
    metadata = _metadata(field_info, annotation)
    examples = [e for e in _examples(field_info, annotation) if e != current]
    out: list[Any] = []
    origin = typing.get_origin(scalar)
    if scalar is bool:
        out = [not current] if current is not None else [True, False]
    elif origin is Literal:
        out = [v for v in typing.get_args(scalar) if v != current]
    elif scalar in (int, float):
        if any(getattr(getattr(m, "func", None), "__name__", "") == "_retention" for m in metadata):
            out = [d for d in LOG_RETENTION_DAYS if current is None or d > current][:1] + \
                  [d for d in reversed(LOG_RETENTION_DAYS) if current is not None and d < current][:1]
        else:
            low, high, low_open, high_open = numeric_bounds(metadata)
            base = current if current is not None else (low if low is not None else 1)
            step = 1 if scalar is int else max(abs(base) * 0.25, 0.1)
            raw = [base + step, base - step, base * 2, base / 2 if scalar is float else base // 2, low, high]
            if current is None:
                raw = [base, *raw]
            for value in raw:
                if value is None:
                    continue
                value = int(value) if scalar is int else round(float(value), 6)
                if value != current and _inside(value, low, high, low_open, high_open) and value not in out:
                    out.append(value)
    elif origin is list:
        item = typing.get_args(scalar)[0] if typing.get_args(scalar) else str
        item_examples = [e for e in examples if not isinstance(e, list)]
        whole = [e for e in examples if isinstance(e, list)]
        out = whole + [list(current or []) + [e] for e in item_examples if e not in (current or [])]
        item_bare = _strip(item)[0]
        if not out and typing.get_origin(item_bare) is Literal:
            out = [list(current or []) + [v] for v in typing.get_args(item_bare) if v not in (current or [])][:1]
        if not out and item_bare is int:
            low, high, low_open, high_open = numeric_bounds(_strip(item)[1])
            for value in sorted({*(v + 1 for v in current or []), *(v - 1 for v in current or []), *(low, high)} - {None}):
                if value not in (current or []) and _inside(value, low, high, low_open, high_open):
                    out = [sorted([*(current or []), value])]
                    break
        if not out and current and len(current) > 1:
            out = [list(current)[:-1]]
        if not out and _strip(item)[0] is str:
            inner_examples = [e for e in _type_examples(item) if e not in (current or [])]
            out = [list(current or []) + [e] for e in inner_examples]
            if not current and len(inner_examples) > 1:
                out.insert(0, inner_examples)  # e.g. two subnets, two zones
    elif origin is dict or scalar is dict:
        out = [e for e in examples if isinstance(e, dict)] or [{**(current or {}), "RolloutCheck": "changed"}]
    elif scalar is str:
        out = [e for e in examples if isinstance(e, str)]
    else:
        out = examples
    if optional and current is not None:
        out.append(None)
    return [v for v in out if v != current]


def _type_examples(annotation: Any) -> list[Any]:
    found = []
    for item in _strip(annotation)[1]:
        found += list(getattr(getattr(item, "func", None), "examples", ()) or ())
    return found


# ---------------------------------------------------------------------------------------
# Raw settings (nested dicts) helpers
# ---------------------------------------------------------------------------------------


def _get(raw: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = raw
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _set(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return out


def _dump(value: Any) -> Any:
    """A validated value as raw settings (what TOML would hold)."""
    if isinstance(value, BaseModel):
        return {k: _dump(v) for k, v in value.model_dump(mode="python", exclude_none=False).items()}
    return value


def example_of(model: type[BaseModel]) -> dict[str, Any] | None:
    """The smallest raw table that validates as ``model``: its tag and required fields from examples."""
    raw: dict[str, Any] = {}
    tag = _tag(model)
    if tag is not None:
        raw["type"] = tag
    for name, info in model.model_fields.items():
        if name == "type" or not (info.default is PydanticUndefined and info.default_factory is None):
            continue
        models, _, others = _members(info.annotation)
        if models:
            member = example_of(models[0])
            if member is None:
                return None
            raw[name] = member
            continue
        examples = _examples(info, info.annotation)
        bare = _strip(info.annotation)[0]
        if typing.get_origin(bare) is list:
            item = typing.get_args(bare)[0]
            item_models = [m for m in (_members(item)[0])]
            if item_models:
                element = example_of(item_models[0])
                if element is None:
                    return None
                raw[name] = [element]
                continue
            examples = [e if isinstance(e, list) else [e] for e in examples] or \
                       [[e] for e in _type_examples(item)]
        if not examples:
            return None
        raw[name] = examples[0]
    try:
        model.model_validate(raw)
    except ValidationError:
        return None
    return raw


# ---------------------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------------------


class _Walker:
    def __init__(self, stack: str, cls: type[Settings], space: Space):
        self.stack, self.cls, self.space = stack, cls, space
        self.focus: tuple[str, ...] = ()

    def valid(self, settings: dict[str, Any], project: dict[str, Any]) -> bool:
        try:
            self.cls.model_validate(settings)
            ProjectSettings.model_validate(project)
        except (ValidationError, ValueError):
            return False
        return True

    def baseline(self, id_: str, settings: dict[str, Any], project: dict[str, Any], focus: tuple[str, ...] = ()) -> None:
        """Walk a baseline; a member baseline (``focus``: the union's path) walks only that member's fields."""
        self.space.baselines.append(Baseline(self.stack, id_, settings, project))
        self.focus = focus
        obj = self.cls.model_validate(settings)
        self.walk(self.cls, obj, (), id_, settings, project, section="stack")
        if id_ == "default":
            self.walk(ProjectSettings, ProjectSettings.model_validate(project), (), id_, settings, project, section="project")
        self.focus = ()

    def retry_in_members(self) -> None:
        """A setting no value makes valid against the defaults may be valid against a member
        baseline (``scaler_reserved_concurrency`` needs a ``scaling_target``): try each."""
        members = [b for b in self.space.baselines if b.stack == self.stack and b.id != "default"]
        for stuck in [u for u in self.space.unchangeable if u.stack == self.stack and u.baseline == "default"]:
            path = tuple(stuck.setting.split("."))
            if path[0] == "project" or any("[" in p or "=" in p for p in path):
                continue
            for baseline in members:
                obj = self.cls.model_validate(baseline.settings)
                leaf = next(((p, info, cur) for p, info, cur in _leaves(self.cls, obj) if p == path), None)
                if leaf is None:
                    continue
                _, info, current = leaf
                found = False
                for value in candidates(info, info.annotation, _dump(current)):
                    settings = _set(baseline.settings, path, value)
                    if self.valid(settings, baseline.project):
                        self.space.changes.append(Change(self.stack, baseline.id, stuck.setting, _dump(current), value,
                                                         settings, baseline.project))
                        found = True
                        break
                if found:
                    self.space.unchangeable.remove(stuck)
                    break

    def _in_focus(self, path: tuple[str, ...]) -> bool:
        n = min(len(path), len(self.focus))
        return path[:n] == self.focus[:n]

    def _apply(self, section: str, settings: dict, project: dict, path: tuple[str, ...], value: Any) -> tuple[dict, dict]:
        if section == "project":
            return settings, _set(project, path, value)
        return _set(settings, path, value), project

    def walk(self, model: type[BaseModel], obj: Any, path: tuple[str, ...], base: str,
             settings: dict, project: dict, section: str) -> None:
        for name, info in model.model_fields.items():
            here = (*path, name)
            dotted = ".".join(here) if section == "stack" else "project." + ".".join(here)
            if (section, name) in SKIPPED or name == "type":
                continue
            if section == "stack" and not self._in_focus(here):
                continue
            current = getattr(obj, name) if obj is not None else None
            models, optional, _ = _members(info.annotation)
            if models:
                self.models(models, optional, info, current, here, dotted, base, settings, project, section)
                continue
            bare = _strip(info.annotation)[0]
            element = typing.get_args(bare)[0] if typing.get_origin(bare) is list and typing.get_args(bare) else None
            element_models = _members(element)[0] if element is not None else []
            if element_models:
                self.model_list(element_models, current, here, dotted, base, settings, project, section)
                continue
            self.leaf(model, info, current, here, dotted, base, settings, project, section)

    def leaf(self, parent: type[BaseModel], info: FieldInfo, current: Any, here: tuple[str, ...], dotted: str, base: str,
             settings: dict, project: dict, section: str) -> None:
        tried = candidates(info, info.annotation, _dump(current))
        for value in tried:
            new_settings, new_project = self._apply(section, settings, project, here, value)
            if self.valid(new_settings, new_project):
                self.space.changes.append(Change(self.stack, base, dotted, _dump(current), value, new_settings, new_project))
                return
        # Retry with one other setting changed too (siblings first): the companion is recorded.
        parent_path = here[:-1]
        leaves = sorted(_leaves(self.cls if section == "stack" else ProjectSettings,
                                self.cls.model_validate(settings) if section == "stack" else ProjectSettings.model_validate(project)),
                        # siblings first; a companion that switches something off last (it would hide the change)
                        key=lambda leaf: (_strip(leaf[1].annotation)[0] is bool, leaf[0][:-1] != parent_path))
        for value in tried:
            new_settings, new_project = self._apply(section, settings, project, here, value)
            for other, other_info, other_current in leaves:
                if other == here:
                    continue
                for other_value in candidates(other_info, other_info.annotation, _dump(other_current)):
                    s2, p2 = self._apply(section, new_settings, new_project, other, other_value)
                    if self.valid(s2, p2):
                        companion = ".".join(other) if section == "stack" else "project." + ".".join(other)
                        self.space.changes.append(Change(self.stack, base, dotted, _dump(current), value, s2, p2, (companion,)))
                        return
        why = "no candidate value" if not tried else f"no valid value among {len(tried)} candidates"
        self.space.unchangeable.append(Unchangeable(self.stack, base, dotted, why))

    def models(self, models: list[type[BaseModel]], optional: bool, info: FieldInfo, current: Any,
               here: tuple[str, ...], dotted: str, base: str, settings: dict, project: dict, section: str) -> None:
        raw_here = _get(settings if section == "stack" else project, here)
        if current is not None:
            active = type(current)
            if raw_here is None and _tag(active) is not None:  # a default member: write its tag, as a user would
                settings, project = self._apply(section, settings, project, here, {"type": _tag(active)})
            # The active member: walk its fields in this baseline (as the settings hold it).
            self.walk(active, current, here, base, settings, project, section)
        else:
            active = None
        for member in models:
            if member is active or base != "default":
                continue
            example = example_of(member)
            label = f"{dotted}={_tag(member) or 'set'}"
            if example is None:
                self.space.unchangeable.append(Unchangeable(self.stack, base, label, f"no example for {member.__name__}"))
                continue
            new_settings, new_project = self._apply(section, settings, project, here, example)
            if not self.valid(new_settings, new_project):
                self.space.unchangeable.append(Unchangeable(self.stack, base, label, "the example is not valid here"))
                continue
            before = _tag(active) if active is not None and _tag(active) else (None if active is None else "set")
            self.space.changes.append(Change(self.stack, base, f"{dotted}.type" if _tag(member) else dotted,
                                             before, _tag(member) or "set", new_settings, new_project))
            if section == "stack":  # a baseline per member, from the default baseline only
                focus = self.focus
                self.baseline(label, new_settings, new_project, focus=here)
                self.focus = focus
        if optional and current is not None and raw_here is not None:
            new_settings, new_project = self._apply(section, settings, project, here, None)
            cleaned = _drop(new_settings if section == "stack" else new_project, here)
            new_settings, new_project = (cleaned, new_project) if section == "stack" else (new_settings, cleaned)
            if self.valid(new_settings, new_project):
                self.space.changes.append(Change(self.stack, base, f"{dotted}=unset", "set", None, new_settings, new_project))

    def model_list(self, members: list[type[BaseModel]], current: Any, here: tuple[str, ...], dotted: str, base: str,
                   settings: dict, project: dict, section: str) -> None:
        items = list(current or [])
        for member in members:
            example = example_of(member)
            if example is None:
                self.space.unchangeable.append(Unchangeable(self.stack, base, dotted, f"no example for {member.__name__}"))
                continue
            if any(type(i) is member and i == member.model_validate(example) for i in items):
                continue  # one more of the same element changes nothing
            raw_items = [_dump(i) for i in items] + [example]
            new_settings, new_project = self._apply(section, settings, project, here, raw_items)
            if self.valid(new_settings, new_project):
                label = f"{dotted}[+{_tag(member)}]" if _tag(member) else f"{dotted}[+]"
                self.space.changes.append(Change(self.stack, base, label, len(items), len(raw_items), new_settings, new_project))
                if not items and base == "default" and section == "stack":
                    focus = self.focus
                    self.baseline(f"{dotted}=[{_tag(member) or member.__name__}]", new_settings, new_project, focus=here)
                    self.focus = focus
        if items:  # vary the fields of the first element in this baseline
            first = items[0]
            model = type(first)
            for name, info in model.model_fields.items():
                if name == "type":
                    continue
                self.leaf_in_list(info, getattr(first, name), here, name, dotted, base, settings, project, section)

    def leaf_in_list(self, info: FieldInfo, current: Any, here: tuple[str, ...], name: str, dotted: str, base: str,
                     settings: dict, project: dict, section: str) -> None:
        raw = settings if section == "stack" else project
        items = copy.deepcopy(_get(raw, here))
        for value in candidates(info, info.annotation, _dump(current)):
            items[0] = {**items[0], name: value}
            new_settings, new_project = self._apply(section, settings, project, here, items)
            if self.valid(new_settings, new_project):
                self.space.changes.append(Change(self.stack, base, f"{dotted}[0].{name}", _dump(current), value,
                                                 new_settings, new_project))
                return
        self.space.unchangeable.append(Unchangeable(self.stack, base, f"{dotted}[0].{name}", "no valid value"))


def _leaves(model: type[BaseModel], obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], FieldInfo, Any]]:
    """(path, field, current value) of every scalar setting under ``obj`` (nested tables followed)."""
    for name, info in model.model_fields.items():
        if name == "type":
            continue
        current = getattr(obj, name, None)
        models, _, _ = _members(info.annotation)
        if models:
            if current is not None:
                yield from _leaves(type(current), current, (*path, name))
            continue
        bare = _strip(info.annotation)[0]
        if typing.get_origin(bare) is list and typing.get_args(bare) and _members(typing.get_args(bare)[0])[0]:
            continue
        yield (*path, name), info, current


def _drop(raw: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    node = out
    for key in path[:-1]:
        node = node.get(key, {})
    node.pop(path[-1], None)
    return out


def settings_space(stacks: list[tuple[str, type[Settings]]]) -> Space:
    """Baselines and changes of every ``(stack name, settings class)``."""
    space = Space()
    for name, cls in stacks:
        walker = _Walker(name, cls, space)
        walker.baseline("default", baseline_settings(name), {})
        walker.retry_in_members()
    return space
