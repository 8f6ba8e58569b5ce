"""Who may launch, cancel and resume background runs: read-only mode, the acting user, run ownership.

The app serves everyone who reaches its port, so the job functions (:func:`aclecg.jobs.launch`, ``cancel``,
``resume``) check rights themselves; the pages only hide the buttons. Three rules:

* **Read-only mode** (``ACLECG_READONLY=1``, set by ``aclecg app --read-only`` and by a network-facing start
  without login): nothing is launched, cancelled or resumed, whoever asks.
* **The acting user** is set by the app for each browser session with :func:`acting_as`: an :class:`Actor` named
  after the logged-in user (``user:alice``) or, without login, after a random token of the browser session
  (``session:...``). An actor that may not write (a network-facing app without login) is refused. Library calls
  made from a Streamlit script run without an actor are refused too, so a page or fragment that forgot to name
  its user cannot act for everyone. Outside the app (the command line, a notebook) there is no actor: that is the
  operator of the machine, who may act on every run.
* **Ownership**: each run records its owner (the actor's name) in ``job.json``; only that owner, or the
  operator, may cancel or resume it.

>>> with acting_as(Actor("session:abc")):
...     may_act_on("session:abc"), may_act_on("session:other")
(True, False)
>>> session_actor(address="0.0.0.0", token="abc").can_write
False
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from aclecg.errors import AclEcgError

__all__ = [
    "READONLY_ENV",
    "TRUST_HEADER_ENV",
    "AccessError",
    "Actor",
    "acting_as",
    "current_actor",
    "is_loopback",
    "may_act_on",
    "read_only",
    "require_owner",
    "require_write",
    "session_actor",
]

#: ``1`` (or ``true``/``yes``): the app and the job functions refuse to launch, cancel or resume anything.
READONLY_ENV = "ACLECG_READONLY"
#: Name of a request header set by a trusted reverse proxy to the logged-in user (``aclecg app --trust-proxy-header``).
TRUST_HEADER_ENV = "ACLECG_TRUST_PROXY_HEADER"


class AccessError(AclEcgError):
    """An action this user may not take (read-only app, a run of another user); the message says why."""


@dataclass(frozen=True)
class Actor:
    """The user a browser session acts for: ``name`` is what a run's ``job.json`` records as its owner."""

    name: str
    can_write: bool = True
    #: Why this actor may not launch, cancel or resume (shown in the sidebar and in refusals).
    read_only_reason: str = ""

    @property
    def display(self) -> str:
        """The name as the sidebar shows it (a session token is not shown in full)."""
        kind, _, value = self.name.partition(":")
        return value if kind == "user" else "this browser session"


_ACTOR: ContextVar[Actor | None] = ContextVar("aclecg_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: Actor | None) -> Iterator[Actor | None]:
    """Run the block as ``actor`` (the job functions check its rights and record it as the owner)."""
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)


def current_actor() -> Actor | None:
    """The actor set by :func:`acting_as`, or ``None`` (the operator: command line, notebook)."""
    return _ACTOR.get()


def read_only() -> bool:
    """Whether ``ACLECG_READONLY`` turns every launch, cancel and resume off."""
    return os.environ.get(READONLY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _in_streamlit_run() -> bool:
    """Whether this thread is running a Streamlit script (a page or fragment serving a browser session)."""
    if "streamlit" not in sys.modules:
        return False
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # pragma: no cover - a Streamlit without that module
        return False
    return get_script_run_ctx(suppress_warning=True) is not None


def require_write(action: str) -> Actor | None:
    """The current actor if it may ``action`` (launch, cancel, resume) at all; an :class:`AccessError` if not."""
    if read_only():
        raise AccessError(f"{action} refused: the app is read-only ({READONLY_ENV}=1)")
    actor = current_actor()
    if actor is None and _in_streamlit_run():
        raise AccessError(f"{action} refused: this browser session has no user identity")
    if actor is not None and not actor.can_write:
        raise AccessError(f"{action} refused: {actor.read_only_reason or 'this session is read-only'}")
    return actor


def may_act_on(owner: str | None) -> bool:
    """Whether the current actor may cancel or resume a run owned by ``owner`` (the operator may act on all)."""
    actor = current_actor()
    if actor is None:
        return not _in_streamlit_run()
    return actor.can_write and not read_only() and owner == actor.name


def require_owner(action: str, run: str, owner: str | None) -> None:
    """An :class:`AccessError` unless the current actor may ``action`` the run ``run`` owned by ``owner``."""
    require_write(action)
    if not may_act_on(owner):
        raise AccessError(
            f"{action} refused: run {run!r} was started by another user or browser session; only its owner can "
            f"{action} it (or the operator, with `aclecg runs {action} {run}` on the server)"
        )


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to ``address`` is reachable from this machine only (no address: every interface)."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def session_actor(
    address: str | None, token: str, user: str | None = None, auth: bool = False, forced_read_only: bool = False
) -> Actor:
    """The actor of one browser session.

    ``address`` is the server's ``server.address``; ``token`` the session's random token; ``user`` the logged-in
    user (``st.login`` or the trusted proxy header), ``auth`` whether a login is configured at all. With a login
    configured, only a logged-in user may write and owns runs by name. Without one, a loopback server gives each
    browser session its own runs; a network-facing server is read-only.
    """
    if forced_read_only or read_only():
        return Actor(f"session:{token}", False, f"the app is read-only ({READONLY_ENV}=1 or aclecg app --read-only)")
    if auth:
        if user:
            return Actor(f"user:{user}")
        return Actor(f"session:{token}", False, "log in to launch, cancel or resume runs")
    if is_loopback(address):
        return Actor(f"session:{token}")
    return Actor(
        f"session:{token}",
        False,
        f"served on {address or 'every interface'} without login, so read-only (docs/deploy.md: login or a proxy)",
    )
