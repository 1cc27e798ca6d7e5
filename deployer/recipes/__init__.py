"""The recipes: one module per command family, each a short story of the steps it takes.

- :mod:`.deploy`: check the artifact, lock, upload, hooks, switch (in batches), log, clean up;
- :mod:`.rollback`: switch back to the previous good release, no upload;
- :mod:`.promote`: deploy to one stage exactly the artifact live on another;
- :mod:`.cleanup` and :mod:`.schedule`: remove old releases, now or on a timer;
- :mod:`.status`: releases, history, pending, check (read only);
- :mod:`.admin`: unlock, destroy.

Shared pieces: :mod:`.eventlog` (the release log's events), :mod:`.switch` (switching
``current`` and putting it back), :mod:`.hooks`, :mod:`.summary` (the final table).
Recipes decide through :mod:`deployer.plan`, build scripts through
:mod:`deployer.commands`, and run them only through a :class:`~deployer.fleet.Fleet`.
"""
