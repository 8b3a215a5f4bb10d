"""The emulator: a stateful local fake of the Avaturn service, on aiohttp.web.

Its public names are exported by :mod:`avaturn_async.testing`; the modules here
are private. Where each part lives:

* ``_app``: ``AvaturnEmulator`` itself (start, stop, routes, inspection);
* ``_options``: checking the constructor's arguments (deprecated ones included);
* ``_state`` and ``_records``: the records and the API's rules, no network I/O;
* ``_validation``: reading request bodies as strictly as the API does;
* ``_http``: body reading, auth, error answers; ``_handlers``: one per endpoint;
* ``_work``: processing, renders and exports that finish later;
* ``_fault_plan`` (seeded fault plans, pure decisions) and ``_fault_injection``
  (applying them, and ``fail_next``); ``_ratelimit``: the server-side rate;
* ``_webhooks``: signed deliveries with retries; ``_tasks``: background tasks;
* ``_stats``: counts per route; ``_store``: the state on disk (``state_file``).
"""

__all__: list[str] = []
