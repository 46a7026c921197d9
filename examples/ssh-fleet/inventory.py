"""A pyinfra inventory: three hosts over SSH, two of them in the `web` group.

Host-key checking stays on: hosts must be in ~/.ssh/known_hosts (or the file named below).
"""

_ssh = {"ssh_user": "deploy", "ssh_key": "~/.ssh/id_ed25519", "ssh_strict_host_key_checking": "yes"}

web = [
    ("web-1", {"ssh_hostname": "web-1.example.internal", **_ssh}),
    ("web-2", {"ssh_hostname": "web-2.example.internal", **_ssh}),
]

db = [
    ("db-1", {"ssh_hostname": "db-1.example.internal", **_ssh}),
]
