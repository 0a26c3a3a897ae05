"""Release plans: one image through an environment's fleets in waves (docs/adr/0011)."""
