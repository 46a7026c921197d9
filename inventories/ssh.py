"""An SSH fleet in pyinfra's inventory format: groups are module-level lists.

Each host is a name or a (name, data) tuple; data keys are pyinfra's connector
settings. Host-key checking stays on (ssh_strict_host_key_checking="yes").
"""

_defaults = {
    "ssh_user": "deploy",
    "ssh_key": "~/.ssh/id_ed25519",
    "ssh_known_hosts_file": "~/.ssh/known_hosts",
    "ssh_strict_host_key_checking": "yes",
}

web = [
    ("web-1", {"ssh_hostname": "web-1.example.com", **_defaults}),
    ("web-2", {"ssh_hostname": "web-2.example.com", **_defaults}),
]

db = [("db-1", {"ssh_hostname": "db-1.example.com", "ssh_port": 2222, **_defaults})]
