"""Whether the login user is root, or may become root with sudo without a password."""

from __future__ import annotations

from typing import TypedDict

from pyinfra.api import FactBase

#: sudo's words (the last line it printed) → how Clockwork says why root is out of reach.
_SUDO_REFUSALS = (
    ("a password is required", "sudo asked for a password"),
    ("interactive authentication is required", "sudo asked for a password"),
    ("is not in the sudoers file", "the login user may not use sudo (not in sudoers)"),
    ("may not run sudo", "the login user may not use sudo"),
    ("sudo: not found", "sudo is not installed"),
    ("sudo: command not found", "sudo is not installed"),
)


class PrivilegeInfo(TypedDict):
    """``root``: the login user is root; ``sudo``: it is not, and ``sudo -n`` works; ``error``: why neither."""

    root: bool
    sudo: bool
    error: str | None


class LoginPrivilege(FactBase[PrivilegeInfo]):
    """
    Returns how the login user reaches root: as root, with sudo (never asking for
    a password), or not at all, and why:

    .. code:: python

        host.get_fact(LoginPrivilege, keys=("",))
        {"root": False, "sudo": False, "error": "sudo asked for a password"}

    Its keys are ignored (it takes them to be batched with keyed facts).
    """

    def command(self, keys: tuple[str, ...] = ()) -> str:
        return 'if [ "$(id -u)" = 0 ]; then echo root; elif sudo -n true 2>&1; then echo sudo; fi; true'

    @staticmethod
    def default() -> PrivilegeInfo:
        return PrivilegeInfo(root=False, sudo=False, error=None)

    def process(self, output: list[str]) -> PrivilegeInfo:
        lines = [line.strip() for line in output if line.strip()]
        if lines and lines[-1] == "root":
            return PrivilegeInfo(root=True, sudo=False, error=None)
        if lines and lines[-1] == "sudo":
            return PrivilegeInfo(root=False, sudo=True, error=None)
        said = lines[-1] if lines else "sudo failed without a word"
        reason = next((reason for words, reason in _SUDO_REFUSALS if words in said), f"sudo failed: {said}")
        return PrivilegeInfo(root=False, sudo=False, error=reason)
