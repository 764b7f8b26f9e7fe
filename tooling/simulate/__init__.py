"""`make simulate`: replay load traces through each stack's scaling policy, as its settings configure it.

- ``traces``: load traces (CSV ``timestamp,arrivals``, one row per minute) and their errors;
- ``models``: the pure policy models on a 60 s clock (alarms and simple scaling, target
  tracking, the request-rate controller, scheduled minimums, provisioned concurrency,
  warm-up) and the loop that runs them;
- ``adapters``: settings of each registered stack -> the models it deploys;
- ``report``: metrics, Markdown tables and the settings diff against a git ref;
- ``plots``: one PNG per stack and trace (matplotlib, Agg backend, imported only when plotting);
- ``make_traces``: the documented, deterministic generator of ``traces/*.csv``.

Nothing here imports cdktf or the provider bindings. See docs/simulate.md.
"""
