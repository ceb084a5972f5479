"""The durable event log, cursors, control plane and counters, behind one protocol."""
