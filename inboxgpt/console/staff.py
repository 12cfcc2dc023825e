"""The console's staff accounts: kept in the store (a name, werkzeug's scrypt hash of the password, when the account
last signed out), and the failed logins counted there too, so that a lock holds across workers and machines."""

from __future__ import annotations

import enum
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

from inboxgpt.store import Store

# Five failed logins for an account, or from an address, within 15 minutes lock it for 15 minutes.
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 15 * 60.0
LOCK_SECONDS = 15 * 60.0
MIN_PASSWORD_CHARS = 10
# ASCII only: a fullwidth "ｍａｒｉａ" would pass for maria in a transcript.
NAME = re.compile(r"[\w.@+-]{1,64}", re.ASCII)
# Password checks under way at once in a process: each takes scrypt's 32 MiB and about 70 ms of a core, and anyone
# may ask for one; beyond these a login is asked to try again, so that logins cannot crowd out the webhook.
CHECKS_AT_ONCE = 2
# Checked when the name is unknown, so that a wrong name takes as long as a wrong password.
UNKNOWN = generate_password_hash("not a password of anyone's")


class StaffError(ValueError):
    """A name or password the console cannot take; the message says why."""


class Login(enum.Enum):
    """How a login went."""

    SIGNED_IN = "signed in"
    WRONG = "wrong name or password"
    LOCKED = "locked: too many failed logins"
    BUSY = "too many logins at once"


@dataclass(frozen=True)
class Account:
    """One staff account as kept."""

    password_hash: str
    signed_out: float = 0.0  # sessions from before this (seconds since 1970) are no longer valid

    def encode(self) -> str:
        return json.dumps({"hash": self.password_hash, "signed_out": self.signed_out})

    @classmethod
    def decode(cls, text: str) -> Account:
        data = json.loads(text)
        return cls(data["hash"], float(data.get("signed_out", 0.0)))


class Staff:
    """The staff accounts, their logins and their locks."""

    _checks = threading.BoundedSemaphore(CHECKS_AT_ONCE)

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self._store = store
        self._clock = clock

    def exists(self) -> bool:
        """Whether any staff account exists (without one, the console is off)."""
        return bool(self._store.staff_names())

    def names(self) -> list[str]:
        return self._store.staff_names()

    def add(self, name: str, password: str) -> None:
        """Add an account, or set a new password for one (its sessions then end). StaffError if either is unfit."""
        if not NAME.fullmatch(name):
            raise StaffError("a name is 1 to 64 letters, digits or . @ + - _")
        if len(password) < MIN_PASSWORD_CHARS:
            raise StaffError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
        # werkzeug's default method is scrypt, with a random salt.
        self._store.put_staff(name, Account(generate_password_hash(password), self._clock()).encode())

    def remove(self, name: str) -> bool:
        """Remove an account (its sessions end with it); False if there was none."""
        return self._store.remove_staff(name)

    def log_in(self, name: str, password: str, address: str) -> Login:
        """Whether the password is the account's. Each try is counted against the account and the address before
        the password is checked, in one step with the check that neither has had MAX_FAILURES tries in the window,
        so that tries sent at the same moment cannot all pass before a lock exists; a right password gives its try
        back. The try that finds the count full locks that account or address for LOCK_SECONDS."""
        keys = _keys(name, address)
        if any(self._store.counter(f"console-locked:{key}") for key in keys):
            return Login.LOCKED
        if not self._checks.acquire(blocking=False):
            return Login.BUSY
        try:
            tries = [(f"console-failed:{key}", 1, FAILURE_WINDOW_SECONDS, MAX_FAILURES) for key in keys]
            if (full := self._store.increment_below(tries)) is not None:
                self._store.increment(full.replace("console-failed:", "console-locked:", 1), 1, LOCK_SECONDS)
                return Login.LOCKED
            record = self._store.staff_record(name) if NAME.fullmatch(name) else None
            account = Account.decode(record) if record else None
            right = check_password_hash(account.password_hash if account else UNKNOWN, password)
        finally:
            self._checks.release()
        if account is None or not right:
            return Login.WRONG
        self._store.increment_all([(key, -1, ttl) for key, _, ttl, _ in tries])
        return Login.SIGNED_IN

    def session_valid(self, name: str, signed_in: float) -> bool:
        """Whether a session signed in at `signed_in` is still the account's: it exists, and has not signed out (or
        changed its password) since."""
        record = self._store.staff_record(name)
        return record is not None and Account.decode(record).signed_out < signed_in

    def sign_out(self, name: str) -> None:
        """End every session of the account."""
        record = self._store.staff_record(name)
        if record is not None:
            account = Account.decode(record)
            self._store.put_staff(name, Account(account.password_hash, self._clock()).encode())


def _keys(name: str, address: str) -> tuple[str, str]:
    # The name as typed, bounded: it may be anything, and is only a counter's key.
    return f"name:{name[:64]}", f"address:{address}"
