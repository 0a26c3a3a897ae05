"""ImmutableFleet: a load balancer, two slots, alarms, and the state the release controller owns."""
