"""Flows 2 and 4: GHL's payments and subscriptions -> the Wizehire order's payment state.

GHL's word on money is read, never taken from a webhook: order and invoice webhooks only say
"look", the poller looks for what GHL sends no webhook for, and both end in one refresh that
reads GHL's current data and tells Wizehire when the state changed.

Modules, in flow order:
- `handler`: the GHL `Order*`/`Invoice*` webhook handlers: find the sync record (or keep the
  order as unmatched), queue `order.advance`;
- `advance`: the internal `order.advance`, run in the Wizehire order's own line: the order's
  remaining steps and the refresh, or nothing when a refresh already read the webhook's news;
- `poller`: every `POLL_INTERVAL_SECONDS`, per location under a lease: transactions,
  subscriptions, refunds and stale records -> the refresh;
- `refresh`: one record refreshed from GHL (order, transactions, subscription) -> stored ->
  Wizehire told -> refunds settled; `store_state_seen` for GHL answers the order flow just had;
- `payment_state`: `compute_payment_state`, the pure rules (no I/O);
- `subscriptions`: the order's GHL subscription as Wizehire's `subscription` object;
- `wizehire_sync`: `push_order_state`, the one PATCH of an order's state to Wizehire;
- `unmatched`: GHL orders no record knows, kept and reported to Slack once.
SQL lives in `db/sync_repo.py` and `db/poller_repo.py`. This package file stays import-light.
"""
