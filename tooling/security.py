"""`make security`: checkov on the synthesized stacks, with reviewed per-resource skips.

    python -m tooling.security [--stacks-dir cdktf.out/stacks] [--skips security-skips.yaml]
                               [--config .checkov.yaml] [--report FILE]

Runs checkov (the pinned dev dependency, settings in ``.checkov.yaml``) on every
``<stacks-dir>/*/cdk.tf.json`` and compares its failed checks with the skip file:

* a failed check that no skip covers fails the gate;
* a skip that covered nothing (stale: the resource was renamed, removed or fixed) fails the
  gate too, so the list never outlives its reasons;
* every skip names the check ``id``, the ``resource`` (a Terraform address; the name part may
  be a glob) and a ``reason``; the file is validated first, one line per problem.

Prints a Markdown report (failures, stale skips, skips applied) and exits 0 when the gate
passes, 1 when it fails, 2 when it cannot run (bad skip file, nothing synthesized, checkov
error). Checkov's own ``skip-check`` is deliberately unused: it skips a check id for every
resource, and a resource added later would be skipped silently.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterable, Sequence

from app.config import PROJECT_ROOT

DEFAULT_STACKS_DIR = PROJECT_ROOT / "cdktf.out" / "stacks"
DEFAULT_SKIPS = PROJECT_ROOT / "security-skips.yaml"
DEFAULT_CONFIG = PROJECT_ROOT / ".checkov.yaml"
CHECKOV = Path(sys.executable).parent / "checkov"

#: The fields of a skip entry, all required.
SKIP_FIELDS = ("id", "resource", "reason")
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_[0-9]+$")
#: ``type.name`` or ``data.type.name``: the type literal, the name a glob (``*``, ``?``, ``[...]``).
ADDRESS = re.compile(r"^(data\.)?[a-z][a-z0-9_]*\.[A-Za-z0-9_\-*?\[\]!]+$")
MIN_REASON = 20


class SecurityError(Exception):
    """The gate cannot run: one line per problem."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Skip:
    id: str
    resource: str
    reason: str
    index: int  # 1-based position in the file, for messages

    def covers(self, finding: "Finding") -> bool:
        return self.id == finding.check_id and fnmatchcase(finding.address, self.resource)

    @property
    def label(self) -> str:
        return f"skip #{self.index} ({self.id} {self.resource})"


@dataclass(frozen=True)
class Finding:
    """One failed check on one resource of one stack."""

    check_id: str
    check_name: str
    address: str
    stack: str
    guideline: str = ""


@dataclass(frozen=True)
class Outcome:
    failures: list[Finding]
    skipped: list[tuple[Finding, Skip]]
    stale: list[Skip]
    passed: int

    @property
    def ok(self) -> bool:
        return not self.failures and not self.stale


# --- the skip file ------------------------------------------------------------------------


def parse_skips(data: Any, source: str = "security-skips.yaml") -> list[Skip]:
    """Validate the loaded skip file (``{"skips": [{id, resource, reason}, ...]}``)."""
    if data is None:
        data = {"skips": []}
    if not isinstance(data, dict) or set(data) != {"skips"}:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise SecurityError([f"{source}: must be a mapping with exactly one key `skips` (found {found})"])
    entries = data["skips"] or []
    if not isinstance(entries, list):
        raise SecurityError([f"{source}: `skips` must be a list of entries (found {type(entries).__name__})"])
    problems: list[str] = []
    skips: list[Skip] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries, start=1):
        where = f"{source}: skip #{index}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping with {', '.join(SKIP_FIELDS)} (found {entry!r})")
            continue
        if isinstance(entry.get("id"), str):
            where += f" ({entry['id']})"
        entry_problems = _entry_problems(entry)
        problems.extend(f"{where}: {p}" for p in entry_problems)
        if entry_problems:
            continue
        key = (entry["id"], entry["resource"])
        if key in seen:
            problems.append(f"{where}: duplicates skip #{seen[key]} (same id and resource)")
            continue
        seen[key] = index
        skips.append(Skip(entry["id"], entry["resource"], " ".join(entry["reason"].split()), index))
    if problems:
        raise SecurityError(problems)
    return skips


def _entry_problems(entry: dict[str, Any]) -> list[str]:
    problems = [f"unknown field `{k}` (fields: {', '.join(SKIP_FIELDS)})" for k in entry if k not in SKIP_FIELDS]
    for field in SKIP_FIELDS:
        value = entry.get(field)
        if field not in entry or value is None:
            problems.append(f"missing field `{field}`")
        elif not isinstance(value, str):
            problems.append(f"`{field}` must be a string (given {value!r})")
        elif field == "id" and not CHECK_ID.match(value):
            problems.append(f"`id` must be a checkov check id such as CKV_AWS_117 (given {value!r})")
        elif field == "resource" and not ADDRESS.match(value):
            problems.append(f"`resource` must be a Terraform address `type.name`; only the name may be a glob "
                            f"(given {value!r})")
        elif field == "reason" and len(value.strip()) < MIN_REASON:
            problems.append(f"`reason` must say why this resource may fail this check "
                            f"(at least {MIN_REASON} characters; given {value.strip()!r})")
    return problems


def load_skips(path: Path) -> list[Skip]:
    import yaml  # PyYAML: a dependency of checkov

    if not path.is_file():
        raise SecurityError([f"{path}: skip file not found"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SecurityError([f"{path.name}: not valid YAML: {exc}"]) from None
    return parse_skips(data, path.name)


# --- checkov ------------------------------------------------------------------------------


def stack_files(stacks_dir: Path) -> list[Path]:
    files = sorted(stacks_dir.glob("*/cdk.tf.json"))
    if not files:
        raise SecurityError([f"{stacks_dir}: no */cdk.tf.json found (run `make synth` first)"])
    return files


def run_checkov(files: Sequence[Path], config: Path, checkov: Path = CHECKOV) -> list[dict[str, Any]]:
    """checkov's JSON reports (one per check type) for ``files``."""
    if not checkov.exists():
        raise SecurityError([f"{checkov} not found: run `make install` (checkov is a pinned dev dependency)"])
    command = [str(checkov), "--config-file", str(config), "--output", "json",
               *[arg for f in files for arg in ("--file", str(f))]]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    # checkov exits 1 when a check failed; anything else but 0 is checkov itself failing.
    try:
        report = json.loads(run.stdout) if run.stdout.strip() else None
    except json.JSONDecodeError:
        report = None
    if run.returncode not in (0, 1) or report is None:
        tail = "\n".join((run.stderr.strip() or run.stdout.strip()).splitlines()[-15:])
        raise SecurityError([f"checkov failed (exit {run.returncode}):", tail])
    reports = report if isinstance(report, list) else [report]
    if any(r.get("summary", {}).get("parsing_errors") for r in reports):
        raise SecurityError([f"checkov could not parse some files: {[r.get('results', {}).get('parsing_errors') for r in reports]}"])
    return reports


def resource_types(doc: dict[str, Any]) -> dict[str, str]:
    """``name -> address`` of every resource and data source in a synthesized stack."""
    addresses: dict[str, str] = {}
    for kind, prefix in (("resource", ""), ("data", "data.")):
        for type_, blocks in (doc.get(kind) or {}).items():
            for name in blocks:
                addresses.setdefault(f"{prefix}{name}", f"{prefix}{type_}.{name}")
    return addresses


def normalize_address(resource: str, addresses: dict[str, str]) -> str:
    """checkov names terraform_json resources ``resource.<name>`` (or ``data.<name>``) for
    resource checks and ``<type>.<name>`` for graph checks: return ``<type>.<name>``."""
    kind, _, name = resource.partition(".")
    if kind == "resource":
        return addresses.get(name, resource)
    if kind == "data" and "." not in name:
        return addresses.get(f"data.{name}", resource)
    return resource


def findings(reports: Iterable[dict[str, Any]], docs: dict[str, dict[str, Any]]) -> tuple[list[Finding], int]:
    """(failed checks with Terraform addresses and stack names, number of passed checks)."""
    found: list[Finding] = []
    passed = 0
    addresses = {stack: resource_types(doc) for stack, doc in docs.items()}
    for report in reports:
        passed += int(report.get("summary", {}).get("passed", 0))
        for check in report.get("results", {}).get("failed_checks", []):
            stack = Path(check["file_path"]).parent.name
            found.append(Finding(
                check_id=check["check_id"],
                check_name=check.get("check_name") or "",
                address=normalize_address(check["resource"], addresses.get(stack, {})),
                stack=stack,
                guideline=check.get("guideline") or "",
            ))
    return sorted(set(found), key=lambda f: (f.stack, f.address, f.check_id)), passed


def apply_skips(found: Sequence[Finding], skips: Sequence[Skip], passed: int = 0) -> Outcome:
    failures: list[Finding] = []
    skipped: list[tuple[Finding, Skip]] = []
    used: set[int] = set()
    for finding in found:
        skip = next((s for s in skips if s.covers(finding)), None)
        if skip is None:
            failures.append(finding)
        else:
            skipped.append((finding, skip))
            used.add(skip.index)
    return Outcome(failures, skipped, [s for s in skips if s.index not in used], passed)


# --- report -------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(outcome: Outcome, stacks: Sequence[str], seconds: float | None = None) -> str:
    verdict = "PASSED" if outcome.ok else "FAILED"
    timing = f" in {seconds:.1f}s" if seconds is not None else ""
    parts = [
        f"# Security gate (checkov): {verdict}",
        "",
        f"{len(stacks)} stacks scanned{timing}: {outcome.passed} checks passed, {len(outcome.failures)} failed, "
        f"{len(outcome.skipped)} failed but skipped (security-skips.yaml), {len(outcome.stale)} stale skips.",
    ]
    if outcome.failures:
        # checkov fills `guideline` only when it may download policy metadata (it may not here).
        guided = any(f.guideline for f in outcome.failures)
        header = ["check", "resource", "stack", "what it asks", *(["guideline"] if guided else [])]
        parts += ["", "## Failed checks not skipped (fix the construct, or add a skip with its reason)", "",
                  _table(header, [(f.check_id, f"`{f.address}`", f.stack, f.check_name, *([f.guideline or "-"] if guided else []))
                                  for f in outcome.failures])]
    if outcome.stale:
        parts += ["", "## Stale skips (they matched no failed check: remove them)", "",
                  _table(["skip", "check", "resource", "reason"],
                         [(f"#{s.index}", s.id, f"`{s.resource}`", s.reason) for s in outcome.stale])]
    if outcome.skipped:
        used = sorted({s.index: s for _, s in outcome.skipped}.values(), key=lambda s: s.index)
        parts += ["", "## Skips applied", "",
                  _table(["check", "resource", "stack", "skip"],
                         [(f.check_id, f"`{f.address}`", f.stack, f"#{s.index}") for f, s in outcome.skipped]),
                  "", "### Their reasons", "",
                  _table(["skip", "check", "resource", "reason"],
                         [(f"#{s.index}", s.id, f"`{s.resource}`", s.reason) for s in used])]
    return "\n".join(parts) + "\n"


def gate(stacks_dir: Path, skips_path: Path, config: Path) -> tuple[Outcome, list[str], float]:
    """Run the whole gate: (outcome, scanned stacks, checkov seconds). Raises SecurityError."""
    skips = load_skips(skips_path)
    files = stack_files(stacks_dir)
    docs = {f.parent.name: json.loads(f.read_text()) for f in files}
    started = time.monotonic()
    reports = run_checkov(files, config)
    seconds = time.monotonic() - started
    found, passed = findings(reports, docs)
    return apply_skips(found, skips, passed), sorted(docs), seconds


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tooling.security", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks-dir", type=Path, default=DEFAULT_STACKS_DIR, help="folder of <stack>/cdk.tf.json (default cdktf.out/stacks)")
    parser.add_argument("--skips", type=Path, default=DEFAULT_SKIPS, help="skip file (default security-skips.yaml)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="checkov config file (default .checkov.yaml)")
    parser.add_argument("--report", type=Path, default=None, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    try:
        outcome, stacks, seconds = gate(args.stacks_dir, args.skips, args.config)
    except SecurityError as exc:
        print("security gate cannot run:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    text = render(outcome, stacks, seconds)
    print(text, end="")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
