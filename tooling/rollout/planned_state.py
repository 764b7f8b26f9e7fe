"""A Terraform state that holds a stack exactly as configured, without applying anything.

``make rollout-check`` asks Terraform what a settings change does to a *deployed* stack. The
provider decides what forces a replacement (``replace_paths`` in the plan); its schema does
not say. Planning against an applied state needs every resource to exist, which the local
emulator cannot give for all of them (Application Auto Scaling, provisioned concurrency). So
the state is built from the plan itself:

1. ``terraform plan`` of the baseline from empty state (``-refresh=false``; data sources are
   read from the local emulator) gives every resource's planned values, with provider
   defaults filled in and computed values unknown;
2. each unknown becomes a value: an attribute whose configuration is a reference to another
   resource (``${aws_vpc.x.id}``) gets that resource's value (resources in dependency order),
   any other a placeholder of the schema's type (``fake-<name>-<attribute>``);
3. the baseline is planned again against that state, which must be a no-op; differences
   (values the provider normalizes) are folded back in, at most :data:`ROUNDS` times.

Changes are then planned against this state with ``-refresh=false``: nothing is read from or
written to any cloud, and the plan's actions and ``replace_paths`` are the provider's own.
"""

from __future__ import annotations

import json
import re
from graphlib import TopologicalSorter
from typing import Any

ROUNDS = 3
PROVIDER = 'provider["registry.terraform.io/hashicorp/aws"]'
_REFERENCE = re.compile(r"\$\{([a-z][a-z0-9_]*)\.([A-Za-z0-9_]+)\.")
_WHOLE_REFERENCE = re.compile(r"^\$\{([a-z][a-z0-9_]*)\.([A-Za-z0-9_]+)\.([a-z0-9_]+)((?:\[\d+\]|\.[a-z0-9_]+)*)\}$")


def dependency_order(config: dict[str, Any]) -> list[str]:
    """Managed resource addresses, every resource after those its configuration references."""
    resources = config.get("resource", {})
    graph: dict[str, set[str]] = {}
    for type_, items in resources.items():
        for name, body in items.items():
            address = f"{type_}.{name}"
            text = json.dumps(body)
            refs = {f"{t}.{n}" for t, n in _REFERENCE.findall(text) if t in resources and n in resources[t]}
            refs |= {d for d in body.get("depends_on", []) if isinstance(d, str)}
            graph[address] = {r.removeprefix("${").removesuffix("}") for r in refs} - {address}
    return list(TopologicalSorter(graph).static_order())


#: EC2-style IDs the provider validates by prefix (``lt-``, ``sg-`` ...), by resource type.
ID_PREFIXES = {
    "aws_vpc": "vpc", "aws_subnet": "subnet", "aws_security_group": "sg", "aws_default_security_group": "sg",
    "aws_internet_gateway": "igw", "aws_route_table": "rtb", "aws_route_table_association": "rtbassoc",
    "aws_launch_template": "lt", "aws_vpc_security_group_ingress_rule": "sgr", "aws_vpc_security_group_egress_rule": "sgr",
    "aws_nat_gateway": "nat", "aws_eip": "eipalloc", "aws_vpc_endpoint": "vpce",
}


def _hex(address: str, attribute: str, digits: int = 17) -> str:
    import hashlib

    return hashlib.sha256(f"{address}.{attribute}".encode()).hexdigest()[:digits]


def _placeholder(type_: Any, address: str, attribute: str) -> Any:
    if type_ == "string":
        resource_type, name = address.split(".", 1)
        if attribute == "id" and resource_type in ID_PREFIXES:
            return f"{ID_PREFIXES[resource_type]}-{_hex(address, attribute)}"
        if attribute in ("key_id",) or (attribute == "id" and resource_type == "aws_kms_key"):
            h = _hex(address, "key", 32)
            return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
        if attribute == "arn" or attribute.endswith("_arn"):
            service = resource_type.removeprefix("aws_").split("_")[0]
            return f"arn:aws:{service}:us-east-1:123456789012:{name}-{_hex(address, attribute, 8)}"
        return f"fake-{name}-{attribute}"
    if type_ == "number":
        return 0
    if type_ == "bool":
        return False
    if isinstance(type_, list):
        kind = type_[0]
        if kind in ("list", "set"):
            return []
        if kind == "map":
            return {}
        if kind == "object":
            return {k: _placeholder(v, address, k) for k, v in type_[1].items()}
    return None


def _lookup(values: dict[str, dict[str, Any]], match: re.Match) -> Any:
    type_, name, attribute, rest = match.groups()
    value: Any = values.get(f"{type_}.{name}", {}).get(attribute)
    for part in re.findall(r"\[(\d+)\]|\.([a-z0-9_]+)", rest):
        index, key = part
        if value is None:
            return None
        value = value[int(index)] if index and isinstance(value, list) and int(index) < len(value) else (
            value.get(key) if key and isinstance(value, dict) else None)
    return value


_ANY_REFERENCE = re.compile(r"\$\{([a-z][a-z0-9_]*)\.([A-Za-z0-9_]+)\.([a-z0-9_]+)((?:\[\d+\]|\.[a-z0-9_]+)*)\}")

#: Computed values the provider fills in and compares (some force a replacement when they differ),
#: as AWS returns them for what this project configures.
KNOWN_COMPUTED: dict[tuple[str, str], Any] = {
    ("aws_lb_target_group", "protocol_version"): "HTTP1",
    ("aws_lb_target_group", "ip_address_type"): "ipv4",
    ("aws_lb_target_group", "load_balancing_cross_zone_enabled"): "use_load_balancer_configuration",
    ("aws_lb_target_group", "load_balancing_anomaly_mitigation"): "off",
    ("aws_lb_target_group", "preserve_client_ip"): "true",
}


def resolve(expression: Any, values: dict[str, dict[str, Any]]) -> Any:
    """A configured value with its references to other resources replaced by their (state) values;
    None when something cannot be resolved (a function call, an unknown resource)."""
    if isinstance(expression, list):
        items = [resolve(item, values) for item in expression]
        return None if any(i is None for i in items) else items
    if not isinstance(expression, str) or "${" not in expression:
        return None
    whole = _WHOLE_REFERENCE.match(expression)
    if whole:
        return _lookup(values, whole)
    parts: list[str] = []
    position = 0
    for match in _ANY_REFERENCE.finditer(expression):
        value = _lookup(values, match)
        if not isinstance(value, (str, int, float)):
            return None
        parts += [expression[position:match.start()], str(value)]
        position = match.end()
    rest = expression[position:]
    if "${" in rest or "${" in "".join(parts[0::2]):
        return None
    return "".join(parts) + rest


def _fill(value: Any, unknown: Any, block: dict[str, Any], config: Any, address: str,
          values: dict[str, dict[str, Any]]) -> Any:
    """``value`` (planned, a block's attributes) with every unknown resolved."""
    if not isinstance(value, dict):
        value = {}
    out = dict(value)
    unknown = unknown if isinstance(unknown, dict) else {}
    config = config if isinstance(config, dict) else {}
    for key, spec in block.get("attributes", {}).items():
        if unknown.get(key) is True or (key not in out):
            resolved = resolve(config.get(key), values)
            known = KNOWN_COMPUTED.get((address.split(".", 1)[0], key))
            if resolved is None and known is not None:
                resolved = known
            out[key] = resolved if resolved is not None else (
                _placeholder(spec["type"], address, key) if unknown.get(key) is True else None)
        elif isinstance(unknown.get(key), (dict, list)) and out.get(key) is not None:
            out[key] = _fill_attribute(out[key], unknown[key], spec["type"], address, key)
    for key, nested in block.get("block_types", {}).items():
        mask = unknown.get(key)
        current = out.get(key)
        sub_config = config.get(key)
        if mask is True:
            out[key] = []
            continue
        if isinstance(current, list):
            cfgs = sub_config if isinstance(sub_config, list) else [sub_config] * len(current)
            masks = mask if isinstance(mask, list) else [{}] * len(current)
            out[key] = [_fill(item, masks[i] if i < len(masks) else {}, nested["block"],
                              cfgs[i] if i < len(cfgs) else {}, address, values) for i, item in enumerate(current)]
        elif isinstance(current, dict):
            out[key] = _fill(current, mask or {}, nested["block"], sub_config, address, values)
        elif current is None:
            out[key] = [] if nested["nesting_mode"] in ("list", "set") else None
    return out


def _fill_attribute(value: Any, unknown: Any, type_: Any, address: str, attribute: str) -> Any:
    """Unknown parts inside a structured attribute (e.g. one map value)."""
    if unknown is True:
        return _placeholder(type_, address, attribute)
    if isinstance(value, dict) and isinstance(unknown, dict):
        inner = type_[1] if isinstance(type_, list) and type_[0] == "map" else None
        return {k: (_fill_attribute(v, unknown.get(k), inner, address, attribute) if unknown.get(k) else v)
                for k, v in value.items()}
    if isinstance(value, list) and isinstance(unknown, list):
        inner = type_[1] if isinstance(type_, list) and type_[0] in ("list", "set") else None
        return [_fill_attribute(v, unknown[i], inner, address, attribute) if i < len(unknown) and unknown[i] else v
                for i, v in enumerate(value)]
    return value


def fabricate(plan: dict[str, Any], config: dict[str, Any], schemas: dict[str, Any], terraform_version: str) -> dict[str, Any]:
    """A state (format 4) holding every managed resource of ``plan`` as planned, unknowns resolved."""
    planned = {r["address"]: r for r in plan.get("planned_values", {}).get("root_module", {}).get("resources", [])
               if r.get("mode") == "managed"}
    unknowns = {rc["address"]: rc["change"].get("after_unknown") or {} for rc in plan.get("resource_changes", [])}
    resources = config.get("resource", {})
    values: dict[str, dict[str, Any]] = {}
    entries = []
    for address in dependency_order(config):
        if address not in planned:
            continue
        item = planned[address]
        schema = schemas[item["type"]]
        body = resources[item["type"]][item["name"]]
        values[address] = _fill(item.get("values") or {}, unknowns.get(address, {}), schema["block"], body, address, values)
        entries.append({
            "mode": "managed", "type": item["type"], "name": item["name"], "provider": PROVIDER,
            "instances": [{"schema_version": schema.get("version", 0), "attributes": values[address],
                           "sensitive_attributes": [], "dependencies": []}],
        })
    return {"version": 4, "terraform_version": terraform_version, "serial": 1,
            "lineage": "00000000-0000-4000-8000-rolloutcheck", "outputs": {}, "resources": entries}


def fold(state: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    """Fold a baseline plan's remaining differences into ``state``; the addresses that differed."""
    changed = {rc["address"]: rc["change"] for rc in plan.get("resource_changes", [])
               if rc.get("mode", "managed") == "managed" and rc["change"]["actions"] not in (["no-op"], ["read"])}
    for resource in state["resources"]:
        address = f"{resource['type']}.{resource['name']}"
        change = changed.get(address)
        if change is None or not change.get("after"):
            continue
        attributes = resource["instances"][0]["attributes"]
        unknown = change.get("after_unknown") or {}
        for key, value in change["after"].items():
            if unknown.get(key) is not True:
                attributes[key] = value
    return sorted(changed)
