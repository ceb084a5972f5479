"""The delivery engine: one consumer per destination reads the log from its own cursor."""
