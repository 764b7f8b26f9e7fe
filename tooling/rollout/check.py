"""`make rollout-check`: what AWS does to running infrastructure when each setting changes.

For every stack and every setting (tooling/rollout/space.py: derived from the settings
classes, one baseline per member of a union):

1. **synthesize** the baseline and one variant per changed setting, all in this process, and
   diff each variant's JSON against its baseline: the resources the setting touches, and the
   attribute paths. A setting that touches nothing is *dead*.
2. **plan** with Terraform against a state that holds the baseline as deployed
   (tooling/rollout/planned_state.py; ``-refresh=false``, nothing is applied anywhere). Every
   variant is a child module of one root per stack, so one provider process plans them all
   (two plans per stack). Each setting is credited with the resources it touches directly
   (the plan's action; ``replace_paths`` is the provider's own word on what forces a
   replacement) and those that change because of them (references, ``replace_triggered_by``).
3. **classify** each resource: update in place, replace create-before-destroy, replace
   destroy-first, create, destroy, or nothing; and what running resources do on top
   (tooling/runtime_effects.py: instance refresh, blue/green endpoint update, ...), as an
   interruption: none, rolling or replacement.

It fails on:

- a destroy-first replacement of a resource that another live resource uses (AWS refuses to
  delete a target group a listener forwards to; a model an endpoint configuration names);
- a replaced resource whose consumer does not change (the endpoint keeps serving the old
  configuration: the plan looks fine and nothing rolls out);
- a create-before-destroy replacement under the same name (:data:`UNIQUE_NAMES`: an IAM role
  whose path changes; AWS refuses the new one while the old one exists, which no plan shows);
- a setting that changes no resource (dead), or changes the JSON but no planned resource;
- a replacement-level interruption, a setting no valid value could be found for:
unless ``rollout-reviewed.yaml`` lists it with a reason. A reviewed entry that matches
nothing fails too (like the security skip list). The result is docs/rollout.md, which a test
keeps equal to this output.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from app.config import PROJECT_ROOT, ProjectSettings
from scaling_patterns.registry import PATTERNS
from tooling.rollout import planned_state
from tooling.rollout.space import Baseline, Change, Space, Unchangeable, settings_space
from tooling.runtime_effects import LEVELS, NONE, REPLACED, REPLACEMENT, ROLLING, effect_of

REVIEWED_FILE = PROJECT_ROOT / "rollout-reviewed.yaml"
DOC = PROJECT_ROOT / "docs" / "rollout.md"
VERDICTS = ("replacement", "nothing", "dead", "destroy-first", "consumer-unchanged", "name-collision", "unchangeable")

#: What AWS keeps unique among resources of a type (within the account and region, or within
#: the parent the other attributes name). A create-before-destroy replacement under the same
#: values fails on AWS ("already exists"), though the emulator-free plan cannot tell.
UNIQUE_NAMES: dict[str, tuple[str, ...]] = {
    "aws_iam_role": ("name",), "aws_iam_instance_profile": ("name",), "aws_iam_role_policy": ("role", "name"),
    "aws_lambda_function": ("function_name",), "aws_lambda_alias": ("function_name", "name"),
    "aws_lambda_permission": ("function_name", "qualifier", "statement_id"),
    "aws_sqs_queue": ("name",), "aws_sns_topic": ("name",), "aws_cloudwatch_log_group": ("name",),
    "aws_cloudwatch_event_bus": ("name",), "aws_cloudwatch_event_rule": ("event_bus_name", "name"),
    "aws_cloudwatch_event_target": ("event_bus_name", "rule", "target_id"),
    "aws_cloudwatch_metric_alarm": ("alarm_name",), "aws_lb": ("name",), "aws_lb_target_group": ("name",),
    "aws_security_group": ("vpc_id", "name"), "aws_launch_template": ("name",), "aws_autoscaling_group": ("name",),
    "aws_autoscaling_policy": ("autoscaling_group_name", "name"), "aws_sagemaker_model": ("name",),
    "aws_sagemaker_endpoint_configuration": ("name",), "aws_sagemaker_endpoint": ("name",), "aws_kms_alias": ("name",),
    "aws_appautoscaling_policy": ("resource_id", "name"), "aws_appautoscaling_scheduled_action": ("resource_id", "name"),
}
MIN_REASON = 20

#: Action words, in the order rows list them.
ACTION_WORDS = {
    "replace-dbd": "replaced destroy-first",
    "replace-cbd": "replaced create-before-destroy",
    "destroy": "destroyed",
    "create": "created",
    "update": "updated in place",
}
ACTION_ORDER = list(ACTION_WORDS)


class RolloutError(Exception):
    """The check cannot run (bad reviewed file, Terraform failed): one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# ---------------------------------------------------------------------------------------
# JSON diff (what a setting touches)
# ---------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def _leaves(value: Any, path: Path_ = ()) -> dict[Path_, Any]:
    if isinstance(value, dict):
        out: dict[Path_, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, (*path, k)))
        return out or {path: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_leaves(v, (*path, i)))
        return out or {path: []}
    return {path: value}


def _normal(path: Path_) -> tuple[str, ...]:
    """A path without list indexes: JSON blocks (objects or lists) and plan paths compare equal."""
    return tuple(p for p in path if not isinstance(p, int))


@dataclass
class Touch:
    """What one setting changes in the synthesized JSON, relative to its baseline."""

    updated: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)  # address -> attribute paths
    created: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    other: list[str] = field(default_factory=list)  # outputs, locals, data sources

    @property
    def empty(self) -> bool:
        return not (self.updated or self.created or self.removed or self.other)

    @property
    def resources(self) -> set[str]:
        return set(self.updated) | self.created | self.removed


def _resources(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{t}.{n}": {k: v for k, v in body.items() if k != "//"}
            for t, items in doc.get("resource", {}).items() for n, body in items.items()}


def touch(base: dict[str, Any], variant: dict[str, Any]) -> Touch:
    result = Touch()
    a, b = _resources(base), _resources(variant)
    result.created = set(b) - set(a)
    result.removed = set(a) - set(b)
    for address in set(a) & set(b):
        if a[address] != b[address]:
            la, lb = _leaves(a[address]), _leaves(b[address])
            result.updated[address] = {_normal(p) for p in set(la) | set(lb) if la.get(p, "\0") != lb.get(p, "\0")}
    for section in ("output", "locals", "data", "provider"):
        if base.get(section) != variant.get(section):
            result.other.append(section)
    regions = [(doc.get("provider", {}).get("aws") or [{}])[0].get("region") for doc in (base, variant)]
    if regions[0] != regions[1]:
        result.other.append("region")
    return result


# ---------------------------------------------------------------------------------------
# Synthesis of many variants in one process
# ---------------------------------------------------------------------------------------


def _variant_name(stack: str, kind: str, index: int) -> str:
    return f"{stack}--{kind}{index:04d}"


def synthesize_variants(items: list[tuple[str, str, dict[str, Any], dict[str, Any]]], outdir: Path,
                        batch: int = 120) -> dict[str, tuple[dict[str, Any], Path]]:
    """Synthesize ``(variant name, stack, stack settings, project settings)``; (JSON, folder) by variant
    name, the variant's name replaced by its stack's in the JSON (tags and paths hold the stack name)."""
    from app.synth import StackRequest, synthesize
    from scaling_patterns.core.settings import validate_section

    specs = {spec.name: spec for spec in PATTERNS}
    docs: dict[str, tuple[dict[str, Any], Path]] = {}
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        requests = []
        for name, stack, settings, project in chunk:
            spec = specs[stack]
            requests.append(StackRequest(spec, name, validate_section(stack, spec.load_settings_class(), settings),
                                         ProjectSettings.model_validate(project)))
        target = outdir / f"batch{start // batch}"
        synthesize(ProjectSettings(), requests, target)
        for name, stack, _, _ in chunk:
            folder = target / "stacks" / name
            docs[name] = (json.loads((folder / "cdk.tf.json").read_text().replace(name, stack)), folder)
    return docs


# ---------------------------------------------------------------------------------------
# Terraform
# ---------------------------------------------------------------------------------------


class Terraform:
    """Plans in throwaway folders that share one initialized provider (``TF_DATA_DIR``)."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        from tooling.terraform import terraform

        self.workdir, self._run = workdir, terraform
        self.template = workdir / "template"
        self.template.mkdir(parents=True)
        (self.template / "main.tf.json").write_text(json.dumps({"terraform": {"required_providers": {
            "aws": {"source": "aws", "version": self._provider_version()}}}}))
        self.env = dict(env, TF_DATA_DIR=str(self.template / ".terraform"))
        init = self._run(["init", "-input=false", "-no-color", "-backend=false"], self.template, dict(env))
        if not init.ok:
            raise RolloutError([f"terraform init failed: {init.stderr.strip()[-2000:]}"])
        schema = self._run(["providers", "schema", "-json"], self.template, self.env)
        if not schema.ok:
            raise RolloutError([f"terraform providers schema failed: {schema.stderr.strip()[-2000:]}"])
        providers = json.loads(schema.stdout)["provider_schemas"]
        self.schemas = next(iter(providers.values()))["resource_schemas"]
        version = self._run(["version", "-json"], self.template, self.env)
        self.version = json.loads(version.stdout)["terraform_version"]

    @staticmethod
    def _provider_version() -> str:
        from scaling_patterns.core.versions import AWS_PROVIDER_VERSION

        return AWS_PROVIDER_VERSION

    def plan_modules(self, name: str, modules: dict[str, tuple[dict[str, Any], Path]],
                     states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """One plan of many stack variants, each a child module, against their states.

        One provider process plans them all: hundreds of variants cost one plan. Variants whose
        provider configuration differs (region, default tags) get an aliased provider of their
        own. Returns each module's part of the plan, addresses without the module prefix, in
        the shape of a one-stack plan (``resource_changes``, ``planned_values``).
        """
        root = self.workdir / name
        root.mkdir()
        providers: list[dict[str, Any]] = []
        module_blocks: dict[str, Any] = {}
        default_provider: dict[str, Any] | None = None
        for module, (doc, assets) in modules.items():
            doc = copy.deepcopy(doc)
            doc.get("terraform", {}).pop("backend", None)
            config = (doc.pop("provider", {}).get("aws") or [{}])[0]
            text = json.dumps(doc)
            if assets is not None and (assets / "assets").is_dir():  # file paths are relative to the root
                text = text.replace('"assets/', json.dumps(str(assets / "assets"))[:-1] + "/")
            folder = root / "modules" / module
            folder.mkdir(parents=True)
            (folder / "cdk.tf.json").write_text(text)
            block: dict[str, Any] = {"source": f"./modules/{module}"}
            if default_provider is None:
                default_provider = config
            if config != default_provider:
                providers.append({**config, "alias": module})
                block["providers"] = {"aws": f"aws.{module}"}
            module_blocks[module] = block
        root_doc = {
            "terraform": {"required_providers": {"aws": {"source": "aws", "version": self._provider_version()}}},
            "provider": {"aws": [default_provider or {}, *providers]},
            "module": module_blocks,
        }
        (root / "main.tf.json").write_text(json.dumps(root_doc))
        shutil.copy(self.template / ".terraform.lock.hcl", root / ".terraform.lock.hcl")
        resources = []
        for module, state in states.items():
            for entry in state["resources"]:
                resources.append({**entry, "module": f"module.{module}"})
        if resources:
            (root / "terraform.tfstate").write_text(json.dumps({
                "version": 4, "terraform_version": self.version, "serial": 1,
                "lineage": "00000000-0000-4000-8000-rolloutcheck", "outputs": {}, "resources": resources}))
        plan = self._plan(root)
        return split_by_module(plan)

    def _plan(self, directory: Path) -> dict[str, Any]:
        env = {k: v for k, v in self.env.items() if k != "TF_DATA_DIR"}  # modules need a data folder each
        init = self._run(["init", "-backend=false", "-input=false", "-no-color"], directory, env)
        if not init.ok:
            raise RolloutError([f"terraform init failed in {directory.name}: {(init.stderr or init.stdout).strip()[-2000:]}"])
        run = self._run(["plan", "-refresh=false", "-input=false", "-no-color", "-lock=false", "-parallelism=20",
                         "-out=rollout.tfplan"], directory, env, timeout=1800)
        if not run.ok:
            errors = [line for line in (run.stderr or run.stdout).splitlines() if line.startswith("Error") or line.startswith("│ Error")]
            raise RolloutError([f"terraform plan failed in {directory.name}: " + ("; ".join(errors[:5]) or (run.stderr or run.stdout)[-2000:])])
        shown = self._run(["show", "-json", "rollout.tfplan"], directory, env, timeout=900)
        if not shown.ok:
            raise RolloutError([f"terraform show failed in {directory.name}: {shown.stderr.strip()[-2000:]}"])
        return json.loads(shown.stdout)


def split_by_module(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A plan of child modules as one plan per module, addresses relative to the module."""
    out: dict[str, dict[str, Any]] = {}

    def part(module_address: str) -> dict[str, Any]:
        name = module_address.removeprefix("module.")
        return out.setdefault(name, {"resource_changes": [], "planned_values": {"root_module": {"resources": []}}})

    for rc in plan.get("resource_changes", []):
        module = rc.get("module_address")
        if not module:
            continue
        rc = {**rc, "address": rc["address"].removeprefix(module + ".")}
        rc.pop("module_address", None)
        part(module)["resource_changes"].append(rc)
    for child in plan.get("planned_values", {}).get("root_module", {}).get("child_modules", []):
        target = part(child["address"])["planned_values"]["root_module"]["resources"]
        for resource in child.get("resources", []):
            target.append({**resource, "address": resource["address"].removeprefix(child["address"] + ".")})
    return out


# ---------------------------------------------------------------------------------------
# Rebuilding a change on another baseline
# ---------------------------------------------------------------------------------------


def modifications(base: Any, changed: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, new value) pairs that turn ``base`` into ``changed`` (dicts recursed, the rest whole)."""
    if base is _MISSING and isinstance(changed, dict) and "type" not in changed:
        base = {}
    if isinstance(base, dict) and isinstance(changed, dict) and not ("type" in changed and base.get("type") != changed.get("type")):
        out = []
        for key in sorted(set(base) | set(changed)):
            if key not in changed:
                out.append(((*path, key), _DELETE))
            elif base.get(key, _MISSING) != changed[key]:
                out += modifications(base.get(key, _MISSING), changed[key], (*path, key))
        return out
    return [] if base == changed else [(path, changed)]


_DELETE, _MISSING = object(), object()


def apply(raw: dict[str, Any], mods: Iterable[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for path, value in mods:
        node = out
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value is _DELETE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------------------------------
# Attribution: what each setting does, from a group's plan
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceEffect:
    address: str
    type: str
    action: str  # a key of ACTION_WORDS, or "nothing"
    level: str
    words: str = ""  # runtime effect in words, if any
    follows: bool = False  # changed because of another resource this setting changes


@dataclass
class Outcome:
    change: Change
    touch: Touch
    effects: list[ResourceEffect] = field(default_factory=list)
    findings: list[tuple[str, str]] = field(default_factory=list)  # (verdict, detail)
    enabled: bool = False  # dead here, but live with another setting (its own row)

    @property
    def level(self) -> str:
        return max((e.level for e in self.effects), key=LEVELS.index, default=NONE)

    @property
    def changed(self) -> list[ResourceEffect]:
        return [e for e in self.effects if e.action != "nothing"]


def _action(actions: list[str]) -> str:
    if actions == ["delete", "create"]:
        return "replace-dbd"
    if actions == ["create", "delete"]:
        return "replace-cbd"
    if actions == ["delete"]:
        return "destroy"
    if actions == ["create"]:
        return "create"
    if actions == ["update"]:
        return "update"
    return "nothing"


def _restricted(change: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    """The plan's change of a resource as if only top-level attributes ``keys`` changed (the rest
    stays as context: an Auto Scaling group's ``instance_refresh`` says what its template change does)."""
    before, after = change.get("before") or {}, dict(change.get("after") or {})
    for key in set(before) | set(after):
        if key not in keys:
            after[key] = before.get(key)
    unknown = {k: v for k, v in (change.get("after_unknown") or {}).items() if k in keys}
    return {**change, "before": before, "after": after, "after_unknown": unknown}


def _changed_keys(change: dict[str, Any]) -> set[str]:
    before, after = change.get("before") or {}, change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k) or _has_unknown(unknown.get(k))}


def _has_unknown(mask: Any) -> bool:
    if mask is True:
        return True
    if isinstance(mask, dict):
        return any(_has_unknown(v) for v in mask.values())
    if isinstance(mask, list):
        return any(_has_unknown(v) for v in mask)
    return False


def _references(body: Any, addresses: set[str]) -> set[str]:
    text = json.dumps(body)
    return {a for a in addresses if f"${{{a}." in text or f'"{a}.' in text or f'"{a}"' in text}


def attribute(outcome: Outcome, plan: dict[str, Any], config: dict[str, Any], order: list[str]) -> None:
    """Fill ``outcome.effects`` from a group plan: direct effects, then those that follow them."""
    t = outcome.touch
    changes = {rc["address"]: rc for rc in plan.get("resource_changes", []) if rc.get("mode", "managed") == "managed"}
    resources = {f"{ty}.{n}": body for ty, items in config.get("resource", {}).items() for n, body in items.items()}
    effects: dict[str, ResourceEffect] = {}

    def record(address: str, rc: dict[str, Any] | None, keys: set[str] | None, follows: bool, triggered: bool = False) -> None:
        """``keys``: the top-level attributes this setting changes on the resource (None: all of it)."""
        type_ = address.split(".", 1)[0]
        if rc is None:
            effects[address] = ResourceEffect(address, type_, "nothing", NONE, follows=follows)
            return
        change = rc["change"]
        action = _action(change["actions"])
        if action.startswith("replace") and keys is not None and not triggered:
            forced = {_normal(tuple(p)) for p in change.get("replace_paths") or []}
            paths = t.updated.get(address, set()) if not follows else {(k,) for k in keys}
            by_me = any(p[: len(f)] == f or f[: len(p)] == p for p in paths for f in forced)
            if not by_me:
                action = "update"  # replaced because of another setting of the group; alone it updates
        restricted = change if keys is None or action != "update" else _restricted(change, keys)
        effect = effect_of({**restricted, "actions": change["actions"] if action != "update" else ["update"]}, type_)
        level = effect.level if effect else NONE
        if action == "destroy" and type_ in REPLACED:
            level, words = REPLACEMENT, "a running resource is destroyed"
        else:
            words = effect.words if effect else ""
        effects[address] = ResourceEffect(address, type_, action, level, words, follows)

    if "region" in t.other:
        # Terraform plans a region change as updates (it compares configuration with state and
        # cannot see that nothing exists in the new region): on refresh every resource is missing
        # there and is created anew, while the originals keep running, forgotten, in the old region.
        for address in sorted(resources):
            effects[address] = ResourceEffect(address, address.split(".", 1)[0], "replace-dbd", REPLACEMENT,
                                              "every resource is created anew in the new region; the originals keep "
                                              "running in the old one, no longer in this state")
        outcome.effects = sorted(effects.values(), key=lambda e: e.address)
        _rules(outcome, {}, {})
        return
    if "provider" in t.other:  # provider configuration (default tags): every resource may follow
        for address, rc in sorted(changes.items()):
            if address not in t.resources and _action(rc["change"]["actions"]) != "nothing":
                record(address, rc, _changed_keys(rc["change"]), True)
    for address in sorted(t.created | t.removed):
        record(address, changes.get(address), None, False)
    for address, paths in sorted(t.updated.items()):
        rc = changes.get(address)
        if rc is not None and _action(rc["change"]["actions"]) == "nothing":
            rc = None
        triggered = rc is not None and rc.get("action_reason") == "replace_by_triggers" and \
            _triggered_by(resources.get(address, {}), effects, t)
        record(address, rc, {p[0] for p in paths if p}, False, triggered)
    # What follows: resources that reference something this setting changes and change with it.
    for address in order:
        if address in effects or address not in changes or address not in resources:
            continue
        rc = changes[address]
        if _action(rc["change"]["actions"]) == "nothing":
            continue
        upstream = {a for a, e in effects.items() if _propagates(e, changes.get(a), resources.get(address))}
        body = resources[address]
        keys = {k for k in _changed_keys(rc["change"]) if _references(body.get(k), upstream)}
        triggered = rc.get("action_reason") == "replace_by_triggers" and _triggered_by(body, effects, t)
        if keys or triggered:
            record(address, rc, keys, True, triggered)
    outcome.effects = sorted(effects.values(), key=lambda e: (ACTION_ORDER.index(e.action) if e.action in ACTION_ORDER else 9, e.address))
    _rules(outcome, changes, resources)


def _triggered_by(body: dict[str, Any], effects: dict[str, "ResourceEffect"], t: Touch) -> bool:
    """Whether this setting changes what the resource's ``replace_triggered_by`` watches."""
    for trigger in (body.get("lifecycle") or {}).get("replace_triggered_by") or []:
        parts = re.split(r"\.(?![^\[]*\])", trigger.removeprefix("${").removesuffix("}"), maxsplit=2)
        address, path = ".".join(parts[:2]), parts[2] if len(parts) > 2 else ""
        effect = effects.get(address)
        if effect is None or effect.action == "nothing":
            continue
        if not path:
            return True
        wanted = _normal(tuple(p for p in re.split(r"[.\[\]]", path) if p and not p.isdigit()))
        if any(touched[: len(wanted)] == wanted for touched in t.updated.get(address, set())):
            return True
    return False


def _propagates(effect: ResourceEffect, rc: dict[str, Any] | None, consumer: dict[str, Any] | None) -> bool:
    """Whether a consumer can change because of ``effect``: a replaced, created or destroyed
    resource has new values; one updated in place only where the consumer reads an attribute
    the update changes (a launch template's ``latest_version``), and only if the plan updates it
    in place too (a resource another setting replaces says nothing about this one)."""
    if effect.action in ("replace-dbd", "replace-cbd", "create", "destroy"):
        return True
    if effect.action != "update" or rc is None or consumer is None or _action(rc["change"]["actions"]) != "update":
        return False
    change = rc["change"]
    read = set(re.findall(r"\$\{" + re.escape(effect.address) + r"\.([a-z0-9_]+)", json.dumps(consumer)))
    return any(k in _changed_keys(change) for k in read)


def _rules(outcome: Outcome, changes: dict[str, Any], resources: dict[str, Any]) -> None:
    effects = {e.address: e for e in outcome.effects}
    consumers = {a: {c for c, body in resources.items() if c != a and _references({k: v for k, v in body.items()
                                                                                    if k not in ("depends_on", "lifecycle")}, {a})}
                 for a in effects}
    for address, effect in effects.items():
        if not effect.action.startswith("replace"):
            continue
        for consumer in sorted(consumers[address]):
            consumer_action = _action(changes[consumer]["change"]["actions"]) if consumer in changes else "nothing"
            if consumer_action not in ("update", "nothing"):
                continue  # replaced, created or destroyed itself: not a live consumer
            mine = effects.get(consumer)
            if effect.action == "replace-dbd" and (mine is None or not mine.action.startswith("replace")):
                outcome.findings.append(("destroy-first", f"{address} is replaced destroy-first while {consumer} uses it"))
            if mine is None or mine.action == "nothing":
                outcome.findings.append(("consumer-unchanged", f"{address} is replaced but {consumer}, which uses it, "
                                                               "does not change: it keeps the old one"))
    for address, effect in effects.items():
        keys = UNIQUE_NAMES.get(address.split(".")[0])
        if effect.action != "replace-cbd" or not keys or address not in changes:
            continue
        change = changes[address]["change"]
        before, after, unknown = change.get("before") or {}, change.get("after") or {}, change.get("after_unknown") or {}
        if any(unknown.get(k) for k in keys) or not any(before.get(k) for k in keys):
            continue
        if all(before.get(k) == after.get(k) for k in keys):
            same = ", ".join(f"{k} = {before.get(k)!r}" for k in keys if before.get(k) is not None)
            outcome.findings.append(("name-collision", f"{address} is replaced create-before-destroy under the same {same}: "
                                                       "AWS refuses the new one while the old one exists"))
    if outcome.touch.empty:
        if not outcome.enabled:
            outcome.findings.append(("dead", "changes nothing in the synthesized stack"))
    elif not outcome.changed:
        outcome.findings.append(("nothing", "changes the configuration but Terraform plans no change"))
    if outcome.level == REPLACEMENT:
        replaced = [e.address for e in outcome.effects if e.level == REPLACEMENT]
        outcome.findings.append(("replacement", "interrupts running resources: " + ", ".join(replaced)))


# ---------------------------------------------------------------------------------------
# Reviewed list
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reviewed:
    stack: str
    setting: str
    verdict: str
    reason: str


def load_reviewed(path: Path = REVIEWED_FILE) -> list[Reviewed]:
    import yaml

    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as exc:
        raise RolloutError([f"{path.name}: not valid YAML: {' '.join(str(exc).split())}"]) from None
    problems, entries = [], []
    known = {spec.name for spec in PATTERNS}
    if not isinstance(data, list):
        raise RolloutError([f"{path.name}: must be a list of entries (given {type(data).__name__})"])
    for index, item in enumerate(data):
        where = f"{path.name}: entry {index + 1}"
        if not isinstance(item, dict) or set(item) != {"stack", "setting", "verdict", "reason"}:
            problems.append(f"{where}: needs exactly stack, setting, verdict, reason (given {item!r})")
            continue
        if item["stack"] not in known:
            problems.append(f"{where}: unknown stack {item['stack']!r} (known: {', '.join(sorted(known))})")
        if item["verdict"] not in VERDICTS:
            problems.append(f"{where}: verdict must be one of {', '.join(VERDICTS)} (given {item['verdict']!r})")
        if not isinstance(item["reason"], str) or len(item["reason"].strip()) < MIN_REASON:
            problems.append(f"{where}: reason must say why in at least {MIN_REASON} characters (given {item['reason']!r})")
        entries.append(Reviewed(str(item["stack"]), str(item["setting"]), str(item["verdict"]), str(item["reason"]).strip()))
    if problems:
        raise RolloutError(problems)
    return entries


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


@dataclass
class Report:
    outcomes: list[Outcome]
    unchangeable: list[Unchangeable]
    reviewed: list[Reviewed]
    baselines: list[Baseline]
    plans: int
    seconds: dict[str, float]
    baseline_noise: dict[str, list[str]] = field(default_factory=dict)


    def unreviewed(self) -> list[str]:
        """Findings no reviewed entry covers, one line each."""
        covered = {(r.stack, r.setting, r.verdict) for r in self.reviewed}
        lines = []
        for o in self.outcomes:
            for verdict, detail in o.findings:
                if (o.change.stack, o.change.setting, verdict) not in covered:
                    lines.append(f"{o.change.stack}: {o.change.setting}: {verdict}: {detail}")
        for u in self.unchangeable:
            if (u.stack, u.setting, "unchangeable") not in covered:
                lines.append(f"{u.stack}: {u.setting}: unchangeable: {u.why} (add examples to the field or review it)")
        return lines

    def stale(self) -> list[str]:
        found = {(o.change.stack, o.change.setting, v) for o in self.outcomes for v, _ in o.findings}
        found |= {(u.stack, u.setting, "unchangeable") for u in self.unchangeable}
        return [f"{r.stack}: {r.setting}: {r.verdict}: reviewed, but the check no longer finds it (remove the entry)"
                for r in self.reviewed if (r.stack, r.setting, r.verdict) not in found]

    @property
    def ok(self) -> bool:
        return not self.unreviewed() and not self.stale() and not self.baseline_noise


def valid_for(stack: str) -> Callable[[dict, dict], bool]:
    cls = next(s for s in PATTERNS if s.name == stack).load_settings_class()

    def check(settings: dict, project: dict) -> bool:
        try:
            cls.model_validate(settings)
            ProjectSettings.model_validate(project)
        except ValueError:
            return False
        return True
    return check


def enable_dead(space: Space, touches: dict[tuple, Touch], docs: dict[str, tuple[dict, Path]],
                change_names: dict[tuple, str], outdir: Path,
                valid: Callable[[str], Callable[[dict, dict], bool]]) -> list[tuple[Baseline, Change, Change]]:
    """For each setting that changes nothing, the first setting that creates resources and with
    which it does change something: (derived baseline, the setting against it, the enabler)."""
    dead = [c for c in space.changes if touches[c.key].empty and c.baseline == "default"]
    enablers = {}
    for c in space.changes:
        if c.baseline == "default" and touches[c.key].created and not c.setting.startswith("project."):
            enablers.setdefault(c.stack, []).append(c)
    base = {(b.stack, b.id): b for b in space.baselines}
    trials: list[tuple[Change, Change, dict[str, Any]]] = []
    for d in dead:
        baseline = base[(d.stack, d.baseline)]
        mods = modifications(baseline.settings, d.settings)
        if not mods or modifications(baseline.project, d.project):
            continue
        for e in enablers.get(d.stack, []):
            combined = apply(e.settings, mods)
            if combined != e.settings and valid(d.stack)(combined, e.project):
                trials.append((d, e, combined))
    if not trials:
        return []
    items = [(_variant_name(d.stack, "e", i), d.stack, combined, e.project) for i, (d, e, combined) in enumerate(trials)]
    trial_docs = synthesize_variants(items, outdir)
    found: list[tuple[Baseline, Change, Change]] = []
    done: set[tuple] = set()
    for i, (d, e, combined) in enumerate(trials):
        if d.key in done:
            continue
        name = items[i][0]
        t = touch(docs[change_names[e.key]][0], trial_docs[name][0])
        if t.empty:
            continue
        done.add(d.key)
        derived = Baseline(d.stack, f"{e.setting}={_value(e.after)}", e.settings, e.project)
        change = Change(d.stack, derived.id, d.setting, d.before, d.after, combined, e.project, d.companions)
        touches[change.key] = t
        change_names[change.key] = name
        docs[name] = trial_docs[name]
        found.append((derived, change, e))
    return found


def _value(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def run(workdir: Path | None = None, stacks: list[str] | None = None, jobs: int = 2,
        progress: Callable[[str], None] = lambda line: None) -> Report:
    from tooling import emulator as emu
    from tooling.terraform import cli_config_env

    seconds: dict[str, float] = {}
    started = time.monotonic()
    specs = [spec for spec in PATTERNS if not stacks or spec.name in stacks]
    space: Space = settings_space([(spec.name, spec.load_settings_class()) for spec in specs])
    reviewed = load_reviewed()
    progress(f"{len(space.changes)} settings changes over {len(space.baselines)} baselines of {len(specs)} stacks")

    enabled: list[tuple[Baseline, Change, Change]] = []
    temp = Path(tempfile.mkdtemp(prefix="rollout-check-")) if workdir is None else workdir
    temp.mkdir(parents=True, exist_ok=True)
    emulator, _ = emu.start(temp / "emulator")
    try:
        t = time.monotonic()
        items = [(_variant_name(b.stack, "b", i), b.stack, b.settings, b.project) for i, b in enumerate(space.baselines)]
        base_names = {(b.stack, b.id): items[i][0] for i, b in enumerate(space.baselines)}
        items += [(_variant_name(c.stack, "c", i), c.stack, c.settings, c.project) for i, c in enumerate(space.changes)]
        docs = synthesize_variants(items, temp / "synth")
        change_names = {c.key: _variant_name(c.stack, "c", i) for i, c in enumerate(space.changes)}
        touches = {c.key: touch(docs[base_names[(c.stack, c.baseline)]][0], docs[change_names[c.key]][0]) for c in space.changes}
        seconds["synth"] = time.monotonic() - t
        progress(f"synthesized {len(items)} variants in {seconds['synth']:.0f}s")
        # Dead on its own but live with another setting (ssl_policy needs certificate_arn): find the
        # enabler, and plan the setting against a baseline that has it.
        t = time.monotonic()
        enabled = enable_dead(space, touches, docs, change_names, temp / "synth-enabled", valid_for)
        for baseline, change, enabler in enabled:
            if (baseline.stack, baseline.id) not in base_names:
                name = change_names[enabler.key] + "-base"  # its own module: planned against its own state
                docs[name] = docs[change_names[enabler.key]]
                base_names[(baseline.stack, baseline.id)] = name
                space.baselines.append(baseline)
            space.changes.append(change)
        seconds["synth"] += time.monotonic() - t
        if enabled:
            progress(f"{len(enabled)} settings live only with another one: "
                     + ", ".join(f"{c.setting} (with {e.setting})" for _, c, e in enabled))

        tf = Terraform(temp / "terraform", cli_config_env(emulator.env()))
        noise: dict[str, list[str]] = {}
        outcomes: list[Outcome] = []
        plans = 0
        live = [c for c in space.changes if not touches[c.key].empty]
        progress(f"planning {len(live)} settings that change something, one module each")

        def plan_stack(stack: str) -> list[Outcome]:
            """Two plans per stack: the baselines from empty (for their planned state), then the
            baselines again (must be no-ops) with every change, each a module against its baseline's state."""
            nonlocal plans
            baselines = {base_names[(b.stack, b.id)]: b for b in space.baselines if b.stack == stack}
            first = tf.plan_modules(f"{stack}-baselines", {n: docs[n] for n in baselines}, {})
            states = {n: planned_state.fabricate(first.get(n, {}), docs[n][0], tf.schemas, tf.version) for n in baselines}
            mine = [c for c in live if c.stack == stack]
            plans += 1
            for round_ in range(planned_state.ROUNDS):
                modules = {n: docs[n] for n in baselines}
                modules.update({change_names[c.key]: docs[change_names[c.key]] for c in mine})
                module_states = dict(states)
                module_states.update({change_names[c.key]: states[base_names[(c.stack, c.baseline)]] for c in mine})
                planned = tf.plan_modules(f"{stack}-r{round_}", modules, module_states)
                plans += 1
                unsettled = {n: planned_state.fold(states[n], planned.get(n, {})) for n in baselines}
                unsettled = {n: left for n, left in unsettled.items() if left}
                if not unsettled:
                    break
            for n, left in unsettled.items():
                noise[f"{stack} ({baselines[n].id})"] = left
            progress(f"{stack}: {len(baselines)} baselines, {len(mine)} changes planned")
            result = []
            for change in mine:
                name = change_names[change.key]
                doc = docs[name][0]
                outcome = Outcome(change, touches[change.key])
                attribute(outcome, planned.get(name, {}), doc, planned_state.dependency_order(doc))
                result.append(outcome)
            return result

        t = time.monotonic()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for chunk in pool.map(plan_stack, [spec.name for spec in specs]):
                outcomes += chunk
        seconds["plans"] = time.monotonic() - t
        # Settings that touched nothing: dead, no plan needed.
        planned_keys = {o.change.key for o in outcomes}
        live_elsewhere = {(c.stack, c.setting) for _, c, _ in enabled}
        for change in space.changes:
            if change.key not in planned_keys:
                outcome = Outcome(change, touches[change.key], enabled=(change.stack, change.setting) in live_elsewhere)
                _rules(outcome, {}, {})
                outcomes.append(outcome)
    finally:
        emu.stop(temp / "emulator")
        if workdir is None:
            shutil.rmtree(temp, ignore_errors=True)
    order: dict[tuple, float] = {c.key: float(i) for i, c in enumerate(space.changes)}
    for _, change, _ in enabled:  # right after the row it stands for
        original = next(k for k in order if k[0] == change.stack and k[2] == change.setting and k[1] == "default")
        order[change.key] = order[original] + 0.5
    outcomes.sort(key=lambda o: order[o.change.key])
    seconds["total"] = time.monotonic() - started
    return Report(outcomes, space.unchangeable, reviewed, space.baselines, plans, seconds, noise)


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------


def _short(address: str, config_paths: dict[str, str] | None = None) -> str:
    return address.split(".", 1)[0]


def describe(outcome: Outcome) -> str:
    """What happens on AWS, in one cell."""
    if outcome.touch.empty:
        return "nothing (the setting changes no resource)"
    parts = []
    by_action: dict[str, list[str]] = {}
    for e in outcome.effects:
        if e.action == "nothing":
            continue
        by_action.setdefault(e.action, []).append(e.type)
    for action in ACTION_ORDER:
        types = by_action.get(action)
        if types:
            counted = [f"{t} x{types.count(t)}" if types.count(t) > 1 else t for t in dict.fromkeys(types)]
            parts.append(f"{ACTION_WORDS[action]}: " + ", ".join(f"`{t}`" for t in counted))
    words = list(dict.fromkeys(e.words for e in outcome.effects if e.words and e.action != "nothing"))
    if not parts:
        ignored = sorted({e.type for e in outcome.effects})
        return "nothing on AWS: Terraform plans no change" + (f" (`{'`, `'.join(ignored)}` ignores it)" if ignored else "")
    return "; ".join(parts) + ("; " + "; ".join(words) if words else "")


def _setting_cell(change: Change) -> str:
    cell = f"`{change.setting}`"
    if change.setting.endswith(".type"):  # a switch between members: say to which
        cell = f"`{change.setting} = \"{change.after}\"`"
    if change.baseline != "default":
        cell += f" (with `{change.baseline}`)"
    if change.companions:
        cell += " (with " + ", ".join(f"`{c}`" for c in change.companions) + ")"
    return cell


def render(report: Report) -> str:
    counts = {level: 0 for level in LEVELS}
    nothing = dead = 0
    for o in report.outcomes:
        if o.enabled:
            continue
        if o.touch.empty:
            dead += 1
        elif not o.changed:
            nothing += 1
        else:
            counts[o.level] += 1
    reasons = {(r.stack, r.setting): r.reason for r in report.reviewed}
    lines = [
        "# What a settings change does to running infrastructure",
        "",
        "<!-- generated by `make rollout-check` (tooling/rollout); do not edit by hand -->",
        "",
        "Every setting of every stack, changed on its own against the defaults (or against each member of a "
        "choice such as `endpoint.type`), planned by Terraform against the stack as deployed. *What happens* lists "
        "Terraform's actions, taken from the AWS provider's own plan (`replace_paths`), and what running resources "
        "do on top (an instance refresh, a blue/green endpoint update: tooling/runtime_effects.py). *Interruption*: "
        "**none** (running work is undisturbed), **rolling** (capacity is replaced step by step), **replacement** "
        "(a running resource is replaced or removed as a whole). Reviewed exceptions (rollout-reviewed.yaml) give "
        "their reason.",
        "",
        f"{sum(not o.enabled for o in report.outcomes)} settings checked: {counts[NONE]} in place, {counts[ROLLING]} rolling, "
        f"{counts[REPLACEMENT]} replacement, {nothing} change nothing on AWS, {dead} change no resource; "
        f"{len(report.unchangeable)} could not be changed on their own.",
        "",
    ]
    for spec in PATTERNS:
        rows = [o for o in report.outcomes if o.change.stack == spec.name and not o.enabled]
        if not rows:
            continue
        lines += [f"## {spec.name}", "", "| setting | what happens on AWS | interruption |", "|---|---|---|"]
        for o in rows:
            level = o.level if o.changed else "none"
            cell = describe(o).replace("|", "\\|")
            reason = reasons.get((o.change.stack, o.change.setting))
            if reason:
                cell += f". *Reviewed:* {reason}"
            lines.append(f"| {_setting_cell(o.change)} | {cell} | {level} |")
        stuck = [u for u in report.unchangeable if u.stack == spec.name]
        for u in stuck:
            reason = reasons.get((u.stack, u.setting), u.why)
            lines.append(f"| `{u.setting}` | not checked: {reason} | - |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
