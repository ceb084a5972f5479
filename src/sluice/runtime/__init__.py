"""The worker's composition root: which processes run which consumers of the log.

It sits above the components (delivery, archive, warehouse, retention, later the lake and
identity) and is the one place that knows them all; each component knows only what is below it.

    sluice serve ──┬── HTTP workers (collector/, web.py)
                   └── worker supervisor (supervisor.py)
                         ├── delivery process: destination consumers    (lanes.DELIVERY)
                         └── batch process: archive, warehouses, retention (lanes.BATCH, nice 10)

A lane is a kind of work with its own process, so that a warehouse load holding its process for
seconds never delays a delivery. Within its lane a process claims units by lease and fair share
(lease_runner.py), as a single worker process did before; the supervisor restarts a lane that
dies (backoff, memory limit) and frees its leases at once.
"""
