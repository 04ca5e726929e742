"""Reconciliation: compare Wizehire's orders, GHL's orders and transactions, and the service's
sync records for a window, store the result per order, and heal what a webhook would have fixed."""
