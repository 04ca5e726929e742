"""Flow 3: Wizehire `refund.requested` -> validated against GHL -> a refund executor -> Wizehire.

GHL has no refund endpoint, so who moves the money is pluggable (`executors`): `auto` (the
default) refunds at the payment gateway GHL's transaction names, one module per gateway in
`gateways/`; `manual` asks a human. GHL only shows the result, as `amountRefunded` growing on a
transaction, which `settle` reads back.

Modules: `executors` (the interface, the registry, `manual`), `gateway_executor` (`auto` and
one executor per gateway, credentials, intent and look-up before any repeat), `gateways/` (the
gateway plug-ins), `rules` (pure validation and settlement arithmetic), `wizehire_push` (the
idempotent Wizehire PATCH), `settle` (`settle_pending_refunds`, called by every payment
refresh), `handler` (the event handler), `validation` (the mapping's `refunds` section against
the installed executors and gateways), `doctor_checks` (`wizesync doctor`'s gateway checks).
This package file stays import-light.
"""
