"""Import only the provider bindings this project uses (an optimization of the app's own process).

``cdktf_cdktf_provider_aws/__init__.py`` holds nothing but documentation and an import of
every one of its 2,135 resource modules (448 MB of generated Python). The constructs here use
a few dozen. Registering the package without running that ``__init__`` lets
``from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction`` load just that module
(and the shared ``_jsii`` assembly loader), which cuts the import from ~15-20 s and ~0.5 GB
of Python memory to a few seconds; see `make bench`. Behaviour is unchanged: every resource
module still imports the same assembly. If the package is missing, nothing is registered and
the normal ImportError surfaces.

The library (``scaling_patterns``) never does this: it changes what ``import
cdktf_cdktf_provider_aws`` means for the whole process (attribute access to a submodule that
was not imported fails), which only the app that owns the process may decide.
"""

from __future__ import annotations

import importlib.util
import sys

PROVIDER_PACKAGE = "cdktf_cdktf_provider_aws"


def import_provider_lazily(name: str = PROVIDER_PACKAGE) -> bool:
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        return False
    sys.modules[name] = importlib.util.module_from_spec(spec)  # a package object, __init__ not executed
    return True
