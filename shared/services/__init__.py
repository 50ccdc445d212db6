"""Services: conversations (a turn as named steps), transfer (import, export, fork), retention, erasure,
reconcile and the audit log. Each is a class built once by the composition root with explicit dependencies
(stores, backends, settings, a clock); none knows about HTTP."""
