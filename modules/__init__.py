"""Constructs and settings for the five AI-workload scaling patterns.

Layout: ``modules/core`` holds what every pattern shares (settings base, naming, IAM
documents, Lambda packaging, the base stack); each pattern is one package with a
``settings.py`` (pydantic only: validating settings never imports the cdktf bindings) and
a ``construct.py`` (the cdktf construct and its stack).
"""

from modules.core.bindings import import_provider_lazily

import_provider_lazily()
