"""The console's staff accounts: kept in the store (a name, werkzeug's scrypt hash of the password, when the account
last signed out), and the failed logins counted there too, so that a lock holds across workers and machines."""

from __future__ import annotations

import json
import re
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
NAME = re.compile(r"^[\w.@+-]{1,64}$")
# Checked when the name is unknown, so that a wrong name takes as long as a wrong password.
UNKNOWN = generate_password_hash("not a password of anyone's")


class StaffError(ValueError):
    """A name or password the console cannot take; the message says why."""


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
        if not NAME.match(name):
            raise StaffError("a name is 1 to 64 letters, digits or . @ + - _")
        if len(password) < MIN_PASSWORD_CHARS:
            raise StaffError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
        # werkzeug's default method is scrypt, with a random salt.
        self._store.put_staff(name, Account(generate_password_hash(password), self._clock()).encode())

    def remove(self, name: str) -> bool:
        """Remove an account (its sessions end with it); False if there was none."""
        return self._store.remove_staff(name)

    def locked(self, name: str, address: str) -> bool:
        """Whether logins for this account, or from this address, are locked now."""
        return any(self._store.counter(f"console-locked:{key}") for key in _keys(name, address))

    def check(self, name: str, password: str, address: str) -> bool:
        """Whether the password is the account's; a failure is counted against the account and the address, and
        the fifth within the window locks both."""
        record = self._store.staff_record(name) if NAME.match(name) else None
        account = Account.decode(record) if record else None
        right = check_password_hash(account.password_hash if account else UNKNOWN, password)
        if account is not None and right:
            return True
        for key in _keys(name, address):
            if self._store.increment(f"console-failed:{key}", 1, FAILURE_WINDOW_SECONDS) >= MAX_FAILURES:
                self._store.increment(f"console-locked:{key}", 1, LOCK_SECONDS)
        return False

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
