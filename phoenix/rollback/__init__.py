"""AlarmRollback: the rollback function and its rules (construct), and its runtime (runtime/)."""
