"""`wizesync doctor`'s checks, each `(ok, name, message)` with a failure's fix in words.

`basic.py` runs the everyday list (`run_checks`: configuration, database and migrations, webhook
keys, then `integrations.py`'s GHL tokens and scopes and Wizehire's API, then the refund
gateways); `golive.py` adds what production needs (`run_go_live`, `docs/GO-LIVE.md`). The
command itself is `cli/doctor.py`.
"""
