"""Names that change with what they name, so a replacement can exist beside the original.

AWS refuses two live resources with one name (a SageMaker model, an endpoint configuration, a
target group). When a change forces Terraform to replace such a resource, a fixed name means
destroy first: the endpoint keeps pointing at a configuration that is being deleted, the
listener at a target group AWS will not delete while it is in use. A name carrying a short
hash of exactly the attributes that force the replacement changes whenever a replacement is
needed and only then, so ``create_before_destroy`` works: the new resource is created under
its new name, consumers are updated to it, then the old one is destroyed.

``versioned(base, content)`` returns ``<base>-<hash>``. The hash is computed here when the
content is literal (the plan shows the name); content holding references to other resources
(tokens) is hashed by Terraform (``sha256(jsonencode(...))``), so the name is known once those
values are.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: Hex digits of the hash in a name: 8 (4 billion values) keeps names short and collisions moot.
HASH_DIGITS = 8


def content_hash(content: Any, digits: int = HASH_DIGITS) -> str:
    """First ``digits`` hex digits of the SHA-256 of ``content`` as canonical JSON."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:digits]


def versioned(base: str, content: Any, digits: int = HASH_DIGITS) -> str:
    """``<base>-<hash of content>``: literal when ``content`` is, a Terraform expression otherwise."""
    from cdktf import Fn, Token

    if not Token.is_unresolved(json.dumps(content, sort_keys=True, default=str)):
        return f"{base}-{content_hash(content, digits)}"
    return Fn.join("-", [base, Fn.substr(Fn.sha256(Fn.jsonencode(content)), 0, digits)])


def address(resource: Any) -> str:
    """``<type>.<logical id>`` of a resource: how lifecycle ``replace_triggered_by`` names it.

    (cdktf renders a resource object there as ``${type.id}``, which Terraform rejects.)
    """
    return f"{resource.terraform_resource_type}.{resource.friendly_unique_id}"


def lowercase(value: str) -> str:
    """``value.lower()``, by Terraform for a token (``str.lower`` would break the token)."""
    from cdktf import Fn

    from scaling_patterns.core.settings import is_token

    return Fn.lower(value) if is_token(value) else value.lower()
