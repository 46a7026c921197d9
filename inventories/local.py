"""The local machine only, through pyinfra's @local connector (no SSH)."""

hosts = ["@local"]
