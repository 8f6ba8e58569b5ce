"""Who this browser session is, for the job functions (see :mod:`aclecg.access`), and the sidebar line saying so.

The user is the one logged in with Streamlit's ``st.login`` (an ``[auth]`` section in ``.streamlit/secrets.toml``)
or named by a trusted reverse proxy's header (``aclecg app --trust-proxy-header NAME``); without either, a random
token kept in ``st.session_state`` stands for the browser session. Pages run every launch, cancel and resume
inside ``with acting():``, so the library checks that user's rights and records the owner.
"""

from __future__ import annotations

import os
import secrets
from contextlib import AbstractContextManager

import streamlit as st

from aclecg import access

SESSION_KEY = "_aclecg_session_token"


def oidc_configured() -> bool:
    """Whether Streamlit's own login (OIDC, ``st.login``) is configured: an ``[auth]`` section in its secrets."""
    try:
        return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)
    except Exception:  # an unreadable secrets file: Streamlit reports it itself; no login then
        return False


def _logged_in_user() -> str | None:
    """The user logged in through ``st.login`` (e-mail, else subject), or the trusted proxy header's value."""
    if oidc_configured() and st.user.is_logged_in:
        name = st.user.get("email") or st.user.get("sub")
        if name:
            return str(name)
    header = os.environ.get(access.TRUST_HEADER_ENV, "").strip()
    if header:
        value = (st.context.headers.get(header) or "").strip()
        return value or None
    return None


def session_actor() -> access.Actor:
    """This browser session's :class:`aclecg.access.Actor` (see :func:`aclecg.access.session_actor`)."""
    token = st.session_state.get(SESSION_KEY)
    if not token:
        token = st.session_state[SESSION_KEY] = secrets.token_urlsafe(18)
    auth = oidc_configured() or bool(os.environ.get(access.TRUST_HEADER_ENV, "").strip())
    return access.session_actor(st.get_option("server.address"), token, user=_logged_in_user(), auth=auth)


def acting() -> AbstractContextManager[access.Actor | None]:
    """``with acting(): jobs.cancel(...)``: the block runs as this session's user."""
    return access.acting_as(session_actor())


def sidebar_status(actor: access.Actor) -> None:
    """One sidebar line: read-only and why, who is signed in, or that runs belong to this browser session."""
    with st.sidebar:
        if not actor.can_write:
            st.caption(f":material/lock: **Read-only**: {actor.read_only_reason}.")
        elif actor.name.startswith("user:"):
            st.caption(f":material/person: Signed in as **{actor.display}**.")
        else:
            st.caption(
                ":material/person: Runs you launch belong to this browser session: only it can cancel or resume "
                "them (after a reload: `aclecg runs cancel NAME` on the server)."
            )
        if oidc_configured():
            if st.user.is_logged_in:
                st.button("Log out", on_click=st.logout, key="auth_logout")
            else:
                st.button("Log in", on_click=st.login, key="auth_login")
