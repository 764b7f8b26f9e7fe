"""The project's own cdktf app: one stack per pattern, settings from one file.

``app.config`` reads and validates the settings file (the ``[project]`` section and one
section per stack), ``app.stack`` is the stack every pattern runs in here (provider, default
tags, backend, outputs), ``app.synth`` builds and synthesizes the App all-or-nothing. The
patterns themselves are the library (``scaling_patterns``, installed from ``modules/``): this
package uses it the way any app would.
"""
