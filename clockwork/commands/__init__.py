"""The library function of each command, one module per command (``clockwork`` exports them by the command's
name): ``apply`` (and plan), ``destroy``, ``evaluate``, ``update``, ``history``, ``rollback``."""
