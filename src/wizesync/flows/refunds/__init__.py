"""Flow 3: Wizehire `refund.requested` -> validated against GHL -> a refund executor -> Wizehire.

GHL has no refund endpoint, so who moves the money is pluggable (`executors`); GHL only shows the
result, as `amountRefunded` growing on a transaction, which `settle` turns into `succeeded`.

Modules: `executors` (the interface, the registry, `manual`), `rules` (pure validation and
settlement arithmetic), `wizehire_push` (the idempotent Wizehire PATCH), `settle`
(`settle_pending_refunds`, called by every payment refresh), `handler` (the event handler).
This package file stays import-light: the mapping validator imports `executors` from it.
"""
