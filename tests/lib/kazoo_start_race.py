"""kazoo's start() reports an authentication failure as a time-out when the failure is quick.

kazoo (2.8, and upstream since its SASL tests were added: python-zk/kazoo pull request 547, where
the maintainers saw test_invalid_sasl_auth end in KazooTimeoutError "sometimes") sets the client
CONNECTED, and wakes start(), before it runs the SASL exchange on its connection thread. When the
exchange fails before the woken start() looks at `connected` (the server answers AUTHFAILED on
loopback within a millisecond; a GSSAPI ticket that is not yet valid fails inside the client),
the client is already in AUTH_FAILED, `connected` is false, and start() raises its time-out
exception, "Connection time-out", with no time-out having happened. On a busy machine that is
what kazoo's own test_invalid_sasl_auth and test_invalid_gssapi_auth hit; all three failed in one
CI run of this project.

install() wraps KazooClient.start: when start() raises its time-out and the client went through
AUTH_FAILED meanwhile (its state may already have moved on to CLOSED: the connection thread
closes after an auth failure), it raises AuthFailedError instead, which is what start() raises
when the failure lands after its check. Nothing else changes: a server that accepts a wrong
password leaves the client CONNECTED (no error), and a server that never answers still gives the
time-out. tests/compat/run-kazoo-suite.sh loads this as a pytest plugin (-p kazoo_start_race);
tests/lib/kazoo_ops.py installs it for the bats helpers.
"""
import kazoo.client
from kazoo.exceptions import AuthFailedError
from kazoo.protocol.states import KeeperState

_kazoo_start = kazoo.client.KazooClient.start
_kazoo_session_callback = kazoo.client.KazooClient._session_callback


def _session_callback(self, state):
    if state == KeeperState.AUTH_FAILED:
        self._zn_auth_failed = True
    return _kazoo_session_callback(self, state)


def _start(self, timeout=15):
    self._zn_auth_failed = False
    try:
        return _kazoo_start(self, timeout)
    except self.handler.timeout_exception:
        if self._zn_auth_failed:
            raise AuthFailedError("authentication failed (kazoo's start() saw it as a time-out)")
        raise


def install():
    kazoo.client.KazooClient._session_callback = _session_callback
    kazoo.client.KazooClient.start = _start


# Loaded by pytest with -p, as a module: install at import.
install()
