"""Runtime code every Lambda handler shares: settings, names, clients, the ledger, events out.

Shipped in every function's asset; it never imports aws_cdk."""
