"""The SQLite store: one file shared by every worker process on a machine, surviving restarts."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from inboxgpt.store import (
    MAX_QUOTES,
    Bounds,
    Queued,
    StoreUnavailable,
    Turn,
    cut_answer,
    names_person,
    newest_turns_within,
    record_of,
    unavailable_on,
)

logger = logging.getLogger(__name__)

FIRST_QUEUED = "SELECT item FROM queue WHERE psid = ? ORDER BY id LIMIT ?"
# Add to a counter, starting it afresh if its lifetime ran out.
INCREMENT = (
    "INSERT INTO counters (key, value, expires_at) VALUES (:key, :amount, :expires) "
    "ON CONFLICT (key) DO UPDATE SET "
    "value = CASE WHEN counters.expires_at <= :now THEN :amount ELSE counters.value + :amount END, "
    "expires_at = CASE WHEN counters.expires_at <= :now THEN :expires ELSE counters.expires_at END"
)
# Link an alias to a key unless it stands for one already (a link past its lifetime stands for none); either way the
# link lives on from now, and the key it stands for is returned.
LINK = (
    "INSERT INTO links (alias, key, expires_at) VALUES (:alias, :key, :expires) "
    "ON CONFLICT (alias) DO UPDATE SET "
    "key = CASE WHEN links.expires_at <= :now THEN excluded.key ELSE links.key END, expires_at = excluded.expires_at "
    "RETURNING key"
)
# Each version's statements bring a database from the version before it to this one.
MIGRATIONS = {
    1: """
CREATE TABLE conversations (psid TEXT PRIMARY KEY, last_active REAL NOT NULL);
CREATE INDEX conversations_by_activity ON conversations (last_active);
CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, psid TEXT NOT NULL, user TEXT NOT NULL, assistant TEXT NOT NULL);
CREATE INDEX turns_by_person ON turns (psid, id);
CREATE TABLE events (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX events_by_expiry ON events (expires_at);
CREATE TABLE counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, psid TEXT NOT NULL, item TEXT NOT NULL);
CREATE INDEX queue_by_person ON queue (psid, id);
""",
    2: """
CREATE TABLE quotes (id INTEGER PRIMARY KEY AUTOINCREMENT, psid TEXT NOT NULL, mid TEXT NOT NULL, text TEXT NOT NULL);
CREATE UNIQUE INDEX quotes_by_message ON quotes (psid, mid);
""",
    3: """
CREATE TABLE pauses (psid TEXT PRIMARY KEY, until REAL NOT NULL, expires_at REAL NOT NULL);
""",
    4: """
CREATE TABLE sent (psid TEXT NOT NULL, mid TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (psid, mid));
CREATE INDEX sent_by_expiry ON sent (expires_at);
""",
    5: """
CREATE TABLE records (kind TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL, text TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE INDEX records_by_time ON records (kind, at);
""",
    # NULL: kept until removed by hand (leads); else when the kind's records are forgotten.
    6: """
ALTER TABLE records ADD COLUMN expires_at REAL;
CREATE INDEX records_by_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
""",
    7: """
CREATE TABLE links (alias TEXT PRIMARY KEY, key TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX links_by_expiry ON links (expires_at);
""",
    8: """
CREATE TABLE transcript (id INTEGER PRIMARY KEY AUTOINCREMENT, psid TEXT NOT NULL, at REAL NOT NULL, entry TEXT NOT NULL);
CREATE INDEX transcript_by_person ON transcript (psid, id);
CREATE INDEX transcript_by_time ON transcript (at);
CREATE TABLE transcript_people (psid TEXT PRIMARY KEY, last REAL NOT NULL, fields TEXT NOT NULL);
CREATE INDEX transcript_people_by_time ON transcript_people (last);
CREATE TABLE staff (name TEXT PRIMARY KEY, record TEXT NOT NULL);
""",
}
SCHEMA_VERSION = max(MIGRATIONS)
# Expired rows are deleted at most this often per process; reads skip them meanwhile.
PURGE_EVERY = 60.0
# Counters read in one query at most (SQLite bounds the parameters of a statement).
COUNTERS_AT_ONCE = 500


def database_path(url: str) -> Path:
    """The file a sqlite:/// URL names (sqlite:///bot.db is relative, sqlite:////var/bot.db absolute)."""
    if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise StoreUnavailable("STORE_URL for SQLite looks like sqlite:///path/to/bot.db")
    return Path(url[len("sqlite:///") :])


@unavailable_on(sqlite3.Error, drop="_drop_connection")
class SQLiteStore:
    """Conversations in a SQLite file in WAL mode, with one connection per thread and process."""

    # Every process on the machine that opens the same file shares it.
    shared = True

    @classmethod
    def from_url(cls, url: str, bounds: Bounds) -> SQLiteStore:
        """Open (and create or migrate) the database a sqlite:/// URL names."""
        return cls(url, bounds)

    def __init__(self, url: str, bounds: Bounds, clock: Callable[[], float] = time.time):
        self._path = database_path(url)
        self._bounds = bounds
        self._clock = clock
        self._local = threading.local()
        self._purged_at = 0.0
        # Every connection opened, with the process that opened it, so close() can close them all.
        self._connections: list[tuple[int, sqlite3.Connection]] = []
        self._connections_lock = threading.Lock()
        if not self._path.parent.is_dir():
            raise StoreUnavailable(f"STORE_URL: the folder {self._path.parent} does not exist")
        try:
            self._connection()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"STORE_URL: cannot open the SQLite database ({exc})") from None

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork or a thread: one per (process, thread). One whose
        # file was deleted or replaced would write where nobody reads: it is dropped too.
        if getattr(self._local, "pid", None) != os.getpid() or self._local.inode != _inode(self._path):
            self._drop_connection()
            self._local.connection, self._local.inode = self._open(), _inode(self._path)
            self._local.pid = os.getpid()
        connection: sqlite3.Connection = self._local.connection
        return connection

    def _open(self) -> sqlite3.Connection:
        """A read-write connection to the database, or sqlite3.Error: never a read-only one."""
        # check_same_thread is off only so that close() may close every thread's connection.
        connection = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            # Deleted conversations are overwritten on disk, not just unlinked from the tree.
            connection.execute("PRAGMA secure_delete=ON")
            connection.create_function("casefold", 1, _casefold, deterministic=True)
            # SQLite quietly opens a file it cannot write read-only: taking the write lock, to
            # bring the schema up to date, proves it can write (and heals a database made anew).
            _migrate(connection, self._path)
        except (sqlite3.Error, StoreUnavailable):
            connection.close()
            raise
        with self._connections_lock:
            self._connections.append((os.getpid(), connection))
        return connection

    def _drop_connection(self) -> None:
        """Close this thread's connection, so the next call opens a fresh one (after an error, say)."""
        connection = getattr(self._local, "connection", None)
        opened_here = getattr(self._local, "pid", None) == os.getpid()
        self._local.connection = self._local.pid = self._local.inode = None
        if connection is not None and opened_here:
            with self._connections_lock:
                self._connections.remove((os.getpid(), connection))
            connection.close()

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._connections_lock:
            mine = [connection for pid, connection in self._connections if pid == os.getpid()]
            self._connections = []
        for connection in mine:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def get(self, psid: str) -> list[Turn]:
        """Return the person's turns, oldest first; empty if none or expired."""
        db = self._connection()
        active = db.execute(
            "SELECT 1 FROM conversations WHERE psid = ? AND last_active > ?", (psid, self._clock() - self._bounds.ttl)
        ).fetchone()
        if not active:
            return []
        rows = db.execute("SELECT user, assistant FROM turns WHERE psid = ? ORDER BY id", (psid,)).fetchall()
        return [Turn(user, assistant) for user, assistant in rows]

    def append(self, psid: str, turn: Turn) -> None:
        """Add a whole turn to the person's history, trimming it to the bounds, in one transaction."""
        now = self._clock()
        with self._transaction() as db:
            self._touch(db, psid, now)
            db.execute("INSERT INTO turns (psid, user, assistant) VALUES (?, ?, ?)", (psid, turn.user, turn.assistant))
            rows = db.execute("SELECT id, user, assistant FROM turns WHERE psid = ? ORDER BY id", (psid,)).fetchall()
            kept = newest_turns_within(
                [Turn(u, a) for _, u, a in rows], self._bounds.max_messages, self._bounds.max_tokens
            )
            first_kept = rows[len(rows) - len(kept)][0] if kept else rows[-1][0] + 1
            db.execute("DELETE FROM turns WHERE psid = ? AND id < ?", (psid, first_kept))
        self._purge_now_and_then(now)

    def _forget_least_active(self, db: sqlite3.Connection) -> None:
        excess = db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] - self._bounds.max_conversations
        if excess > 0:
            _forget(
                db,
                [
                    row[0]
                    for row in db.execute("SELECT psid FROM conversations ORDER BY last_active LIMIT ?", (excess,))
                ],
            )

    def reset(self, psid: str) -> None:
        """Forget the person's history and remembered messages."""
        with self._transaction() as db:
            _forget(db, [psid])

    def remember(self, psid: str, mid: str, text: str) -> None:
        """Keep a message's text (the newest MAX_QUOTES per person), so a reply to it can quote it."""
        with self._transaction() as db:
            self._remember(db, psid, [(mid, text)])

    def _remember(self, db: sqlite3.Connection, psid: str, messages: Sequence[tuple[str, str]]) -> None:
        self._touch(db, psid, self._clock())
        db.executemany(
            "INSERT OR REPLACE INTO quotes (psid, mid, text) VALUES (?, ?, ?)", [(psid, m, t) for m, t in messages]
        )
        db.execute(
            "DELETE FROM quotes WHERE psid = ? AND id NOT IN "
            "(SELECT id FROM quotes WHERE psid = ? ORDER BY id DESC LIMIT ?)",
            (psid, psid, MAX_QUOTES),
        )

    def remember_sent(self, psid: str, sent: Sequence[tuple[str, str]], ttl: float) -> None:
        """Keep the messages the bot sent the person, in one transaction: their text as quotes, their ids for `ttl`
        seconds."""
        expires = self._clock() + ttl
        with self._transaction() as db:
            self._remember(db, psid, sent)
            db.executemany(
                "INSERT OR REPLACE INTO sent (psid, mid, expires_at) VALUES (?, ?, ?)",
                [(psid, mid, expires) for mid, _ in sent],
            )

    def was_sent(self, psid: str, mid: str) -> bool:
        """Whether the bot sent this message (within the `ttl` it was noted for)."""
        row = (
            self._connection()
            .execute("SELECT 1 FROM sent WHERE psid = ? AND mid = ? AND expires_at > ?", (psid, mid, self._clock()))
            .fetchone()
        )
        return row is not None

    def take_back(self, psid: str, start: str) -> bool:
        """Cut the newest answer that holds `start` from there on, in one transaction; False if none holds it."""
        with self._transaction() as db:
            rows = db.execute("SELECT id, user, assistant FROM turns WHERE psid = ? ORDER BY id DESC", (psid,))
            for turn_id, user, assistant in rows.fetchall():
                cut = cut_answer(Turn(user, assistant), start)
                if cut is not None:
                    db.execute("UPDATE turns SET assistant = ? WHERE id = ?", (cut.assistant, turn_id))
                    return True
        return False

    def link_keys(self, links: Sequence[tuple[str, str]]) -> list[str]:
        """For each (alias, key), the key the alias stands for, linking it to `key` if it stands for none; in one
        transaction."""
        now = self._clock()
        with self._transaction() as db:
            return [
                db.execute(
                    LINK, {"alias": alias, "key": key, "expires": now + self._bounds.ttl, "now": now}
                ).fetchone()[0]
                for alias, key in links
            ]

    def recall(self, psid: str, mid: str) -> str | None:
        """Return a remembered message's text, or None."""
        row = (
            self._connection()
            .execute(
                "SELECT text FROM quotes JOIN conversations USING (psid) "
                "WHERE psid = ? AND mid = ? AND last_active > ?",
                (psid, mid, self._clock() - self._bounds.ttl),
            )
            .fetchone()
        )
        return row[0] if row else None

    def _touch(self, db: sqlite3.Connection, psid: str, now: float) -> None:
        """Mark the person active now, forgetting first what they said before going idle."""
        expired = db.execute(
            "SELECT 1 FROM conversations WHERE psid = ? AND last_active <= ?", (psid, now - self._bounds.ttl)
        ).fetchone()
        if expired:
            _forget(db, [psid])
        db.execute(
            "INSERT INTO conversations (psid, last_active) VALUES (?, ?) "
            "ON CONFLICT (psid) DO UPDATE SET last_active = excluded.last_active",
            (psid, now),
        )
        self._forget_least_active(db)

    def expire(self) -> int:
        """Delete idle conversations, old event ids, counters and locks; return how many conversations went."""
        now = self._clock()
        self._purged_at = now
        with self._transaction() as db:
            idle = [
                row[0]
                for row in db.execute(
                    "SELECT psid FROM conversations WHERE last_active <= ?", (now - self._bounds.ttl,)
                )
            ]
            _forget(db, idle)
            db.execute("DELETE FROM events WHERE expires_at <= ?", (now,))
            db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY expires_at LIMIT "
                "max(0, (SELECT COUNT(*) FROM events) - ?))",
                (self._bounds.dedup_max_ids,),
            )
            db.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM locks WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM pauses WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM sent WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM records WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM links WHERE expires_at <= ?", (now,))
            db.execute(
                "DELETE FROM links WHERE alias IN (SELECT alias FROM links ORDER BY expires_at LIMIT "
                "max(0, (SELECT COUNT(*) FROM links) - ?))",
                (self._bounds.max_conversations,),
            )
            oldest_kept = now - self._bounds.transcript_ttl
            db.execute("DELETE FROM transcript WHERE at <= ?", (oldest_kept,))
            db.execute("DELETE FROM transcript_people WHERE last <= ?", (oldest_kept,))
            remaining = db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
        if idle:
            logger.info("forgot %d idle conversations; %d remain", len(idle), remaining)
        return len(idle)

    def _purge_now_and_then(self, now: float) -> None:
        if now - self._purged_at >= PURGE_EVERY:
            self.expire()

    def accept(self, events: Sequence[Queued]) -> list[bool]:
        """Queue each event for its person unless its id was seen within its lifetime, in one transaction."""
        now = self._clock()
        queued = []
        with self._transaction() as db:
            for event in events:
                first_sighting = (
                    db.execute(
                        "INSERT INTO events (id, expires_at) VALUES (?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE events.expires_at <= ?",
                        (event.event_id, now + self._bounds.dedup_ttl, now),
                    ).rowcount
                    == 1
                )
                if first_sighting:
                    db.execute("INSERT INTO queue (psid, item) VALUES (?, ?)", (event.psid, event.item))
                queued.append(first_sighting)
        self._purge_now_and_then(now)
        return queued

    def increment(self, key: str, amount: int, ttl: float) -> int:
        """Add to a counter that lives `ttl` seconds from its first increment; return its new value."""
        now = self._clock()
        row = (
            self._connection()
            .execute(INCREMENT + " RETURNING value", {"key": key, "amount": amount, "expires": now + ttl, "now": now})
            .fetchone()
        )
        return row[0]

    def increment_all(self, amounts: Sequence[tuple[str, int, float]]) -> None:
        """Add to several counters, each as `increment` does, in one transaction."""
        now = self._clock()
        rows = [{"key": key, "amount": amount, "expires": now + ttl, "now": now} for key, amount, ttl in amounts]
        with self._transaction() as db:
            db.executemany(INCREMENT, rows)

    def increment_below(self, amounts: Sequence[tuple[str, int, float, int]]) -> str | None:
        """Add to several counters, each as `increment` does, in one transaction, if every one with a ceiling is
        below it; else add to none and return the first key that is not."""
        now = self._clock()
        with self._transaction() as db:
            for key, _, _, ceiling in amounts:
                row = db.execute("SELECT value FROM counters WHERE key = ? AND expires_at > ?", (key, now)).fetchone()
                if ceiling and row and row[0] >= ceiling:
                    return key
            rows = [{"key": key, "amount": amount, "expires": now + ttl, "now": now} for key, amount, ttl, _ in amounts]
            db.executemany(INCREMENT, rows)
        return None

    def counter(self, key: str) -> int:
        """Return a counter's value; 0 if it does not exist or has expired."""
        row = (
            self._connection()
            .execute("SELECT value FROM counters WHERE key = ? AND expires_at > ?", (key, self._clock()))
            .fetchone()
        )
        return row[0] if row else 0

    def counters(self, keys: Sequence[str]) -> list[int]:
        """Each counter's value, as `counter` gives it, in one query (of at most COUNTERS_AT_ONCE keys each)."""
        found: dict[str, int] = {}
        now = self._clock()
        for start in range(0, len(keys), COUNTERS_AT_ONCE):
            some = keys[start : start + COUNTERS_AT_ONCE]
            marks = ",".join("?" * len(some))
            query = f"SELECT key, value FROM counters WHERE key IN ({marks}) AND expires_at > ?"  # noqa: S608 (only ?s)
            found.update(self._connection().execute(query, (*some, now)).fetchall())
        return [found.get(key, 0) for key in keys]

    def pause(self, psid: str, until: float, ttl: float) -> None:
        """Keep the bot silent for the person until `until` (seconds, in Meta's time); kept `ttl` seconds at most."""
        self._connection().execute(
            "INSERT INTO pauses (psid, until, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (psid) DO UPDATE SET until = excluded.until, expires_at = excluded.expires_at",
            (psid, until, self._clock() + ttl),
        )

    def paused_until(self, psid: str) -> float:
        """When the person's pause ends (seconds, in Meta's time), or 0.0 if none is kept."""
        row = (
            self._connection()
            .execute("SELECT until FROM pauses WHERE psid = ? AND expires_at > ?", (psid, self._clock()))
            .fetchone()
        )
        return float(row[0]) if row else 0.0

    def unpause(self, psid: str) -> None:
        """End the person's pause now."""
        self._connection().execute("DELETE FROM pauses WHERE psid = ?", (psid,))

    def keep_record(self, kind: str, record_id: str, text: str, at: float, ttl: float | None = None) -> bool:
        """Keep a record under its id, once: False if one with that id is kept already; with `ttl`, the kind is
        forgotten `ttl` seconds after its newest record, in one transaction."""
        if ttl is None:
            cursor = self._connection().execute(
                "INSERT OR IGNORE INTO records (kind, id, at, text) VALUES (?, ?, ?, ?)", (kind, record_id, at, text)
            )
            return cursor.rowcount == 1
        now = self._clock()
        with self._transaction() as db:
            db.execute("DELETE FROM records WHERE kind = ? AND expires_at <= ?", (kind, now))
            cursor = db.execute(
                "INSERT OR IGNORE INTO records (kind, id, at, text) VALUES (?, ?, ?, ?)", (kind, record_id, at, text)
            )
            if cursor.rowcount != 1:
                return False
            db.execute("UPDATE records SET expires_at = ? WHERE kind = ?", (now + ttl, kind))
        return True

    def records(self, kind: str, since: float) -> list[str]:
        """The records of a kind kept at or after `since`, oldest first."""
        rows = self._connection().execute(
            "SELECT text FROM records WHERE kind = ? AND at >= ? AND (expires_at IS NULL OR expires_at > ?) "
            "ORDER BY at, id",
            (kind, since, self._clock()),
        )
        return [text for (text,) in rows]

    def forget_record(self, kind: str, record_id: str) -> None:
        """Remove a record, so that one may be kept under its id again."""
        self._connection().execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))

    def ping(self) -> bool:
        """Return True if the database can be written: a new connection opens read-write and takes the write lock."""
        # A new connection, because one opened earlier may still write where new ones cannot.
        try:
            connection = sqlite3.connect(self._path, timeout=5, isolation_level=None)
        except sqlite3.Error:
            return False
        try:
            _migrate(connection, self._path)
        except (sqlite3.Error, StoreUnavailable):
            return False
        finally:
            connection.close()
        return True

    def keep_transcript(self, psid: str, entry: str, fields: Mapping[str, str]) -> None:
        """Append an entry to the person's transcript and merge `fields` into its summary, trimmed to the bounds,
        in one transaction."""
        now = self._clock()
        bounds = self._bounds
        with self._transaction() as db:
            db.execute("DELETE FROM transcript WHERE psid = ? AND at <= ?", (psid, now - bounds.transcript_ttl))
            db.execute("INSERT INTO transcript (psid, at, entry) VALUES (?, ?, ?)", (psid, now, entry))
            db.execute(
                "DELETE FROM transcript WHERE psid = ? AND id NOT IN "
                "(SELECT id FROM transcript WHERE psid = ? ORDER BY id DESC LIMIT ?)",
                (psid, psid, bounds.transcript_max_entries),
            )
            row = db.execute(
                "SELECT fields FROM transcript_people WHERE psid = ? AND last > ?", (psid, now - bounds.transcript_ttl)
            ).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **fields}
            db.execute(
                "INSERT INTO transcript_people (psid, last, fields) VALUES (?, ?, ?) "
                "ON CONFLICT (psid) DO UPDATE SET last = excluded.last, fields = excluded.fields",
                (psid, now, json.dumps(merged)),
            )
            excess = [
                found
                for (found,) in db.execute(
                    "SELECT psid FROM transcript_people ORDER BY last LIMIT "
                    "max(0, (SELECT COUNT(*) FROM transcript_people) - ?)",
                    (bounds.max_conversations,),
                )
            ]
            _forget_transcripts(db, excess)
        self._purge_now_and_then(now)

    def transcript(self, psid: str) -> list[str]:
        """The person's transcript entries still kept, oldest first."""
        rows = self._connection().execute(
            "SELECT entry FROM transcript WHERE psid = ? AND at > ? ORDER BY id",
            (psid, self._clock() - self._bounds.transcript_ttl),
        )
        return [entry for (entry,) in rows]

    def transcript_summary(self, psid: str) -> dict[str, str]:
        """The summary fields of the person's conversation; empty if no transcript is kept."""
        row = (
            self._connection()
            .execute(
                "SELECT fields FROM transcript_people WHERE psid = ? AND last > ?",
                (psid, self._clock() - self._bounds.transcript_ttl),
            )
            .fetchone()
        )
        return json.loads(row[0]) if row else {}

    def transcript_people(self, limit: int) -> list[tuple[str, dict[str, str]]]:
        """The newest `limit` conversations with a transcript, most recently active first."""
        rows = self._connection().execute(
            "SELECT psid, fields FROM transcript_people WHERE last > ? ORDER BY last DESC LIMIT ?",
            (self._clock() - self._bounds.transcript_ttl, limit),
        )
        return [(psid, json.loads(fields)) for psid, fields in rows]

    def search_transcripts(self, words: str, limit: int) -> list[str]:
        """The people whose transcript has an entry whose text holds `words`, ignoring case (Python's casefold: SQLite's
        own LIKE ignores the case of ASCII letters only)."""
        rows = self._connection().execute(
            "SELECT psid FROM transcript_people WHERE last > :oldest AND EXISTS (SELECT 1 FROM transcript "
            "WHERE transcript.psid = transcript_people.psid AND at > :oldest "
            "AND instr(casefold(json_extract(entry, '$.text')), :wanted)) ORDER BY last DESC LIMIT :limit",
            {"oldest": self._clock() - self._bounds.transcript_ttl, "wanted": words.casefold(), "limit": limit},
        )
        return [psid for (psid,) in rows]

    def forget_transcript(self, psid: str) -> None:
        """Delete the person's transcript and its summary."""
        with self._transaction() as db:
            _forget_transcripts(db, [psid])

    def forget_person(self, psid: str) -> list[str]:
        """Delete everything kept under the person's key, in one transaction; return the other keys linked to it."""
        with self._transaction() as db:
            _forget(db, [psid])
            _forget_transcripts(db, [psid])
            for table in ("pauses", "sent", "queue"):
                db.execute(f"DELETE FROM {table} WHERE psid = ?", (psid,))
            db.execute("DELETE FROM locks WHERE name = ?", (psid,))
            linked = {
                other
                for alias, key in db.execute("SELECT alias, key FROM links WHERE alias = ? OR key = ?", (psid, psid))
                for other in (alias, key)
            }
            db.execute("DELETE FROM links WHERE alias = ? OR key = ?", (psid, psid))
            # The names that hold the key's text are few; which of them name the person is decided in Python.
            for table, column in (("events", "id"), ("counters", "key")):
                named = db.execute(f"SELECT {column} FROM {table} WHERE instr({column}, ?)", (psid,)).fetchall()
                db.executemany(
                    f"DELETE FROM {table} WHERE {column} = ?", [row for row in named if names_person(row[0], psid)]
                )
            records = db.execute(
                "SELECT kind, id, text FROM records WHERE instr(kind, :psid) OR id = :psid OR instr(text, :psid)",
                {"psid": psid},
            ).fetchall()
            db.executemany(
                "DELETE FROM records WHERE kind = ? AND id = ?",
                [
                    (kind, record_id)
                    for kind, record_id, text in records
                    if names_person(kind, psid) or record_of(record_id, text, psid)
                ],
            )
        return sorted(linked - {psid})

    def put_staff(self, name: str, record: str) -> None:
        """Keep (or replace) a staff account's record."""
        self._connection().execute("INSERT OR REPLACE INTO staff (name, record) VALUES (?, ?)", (name, record))

    def staff_record(self, name: str) -> str | None:
        """A staff account's record, or None."""
        row = self._connection().execute("SELECT record FROM staff WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def staff_names(self) -> list[str]:
        """Every staff account's name, sorted."""
        return [name for (name,) in self._connection().execute("SELECT name FROM staff ORDER BY name")]

    def remove_staff(self, name: str) -> bool:
        """Remove a staff account; False if there was none."""
        return self._connection().execute("DELETE FROM staff WHERE name = ?", (name,)).rowcount == 1

    def __len__(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM conversations").fetchone()[0]

    def peek(self, psid: str, limit: int = 1) -> list[str]:
        """Return the first `limit` events of the person's queue (none if it is empty)."""
        rows = self._connection().execute(FIRST_QUEUED, (psid, limit))
        return [row[0] for row in rows]

    def pop(self, psid: str, owner: str, handled: Sequence[str], limit: int = 1) -> list[str] | None:
        """Remove the handled events from the person's queue and return the next `limit`, in one transaction, if
        `owner` still holds the person's lock; else None."""
        with self._transaction() as db:
            held = db.execute(
                "SELECT 1 FROM locks WHERE name = ? AND owner = ? AND expires_at > ?", (psid, owner, self._clock())
            ).fetchone()
            if not held:
                return None
            db.executemany(
                "DELETE FROM queue WHERE id = (SELECT id FROM queue WHERE psid = ? AND item = ? ORDER BY id LIMIT 1)",
                [(psid, item) for item in handled],
            )
            rows = db.execute(FIRST_QUEUED, (psid, limit)).fetchall()
        return [row[0] for row in rows]

    def pending(self) -> list[str]:
        """Return the people whose queues hold events."""
        return [row[0] for row in self._connection().execute("SELECT DISTINCT psid FROM queue")]

    def take_lock(self, psid: str, owner: str, ttl: float) -> bool:
        """Take (or, for its owner, extend) the person's lock for `ttl` seconds; False if another holds it."""
        now = self._clock()
        cursor = self._connection().execute(
            "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
            "WHERE locks.owner = excluded.owner OR locks.expires_at <= ?",
            (psid, owner, now + ttl, now),
        )
        return cursor.rowcount == 1

    def release_lock(self, psid: str, owner: str) -> None:
        """Let go of the person's lock, if `owner` holds it."""
        self._connection().execute("DELETE FROM locks WHERE name = ? AND owner = ?", (psid, owner))


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to date, under the write lock."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(f"{path} was written by a newer version (schema {version})")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step].strip().split(";\n"):
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _inode(path: Path) -> int | None:
    """The file's identity on disk, or None if it is gone."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _forget(db: sqlite3.Connection, psids: list[str]) -> None:
    """Delete everything kept about these people's conversations."""
    for table in ("turns", "quotes", "conversations"):
        db.executemany(f"DELETE FROM {table} WHERE psid = ?", [(psid,) for psid in psids])


def _forget_transcripts(db: sqlite3.Connection, psids: list[str]) -> None:
    """Delete these people's transcripts and summaries."""
    for table in ("transcript", "transcript_people"):
        db.executemany(f"DELETE FROM {table} WHERE psid = ?", [(psid,) for psid in psids])


def _casefold(text: object) -> str | None:
    """Text as a search compares it (an entry without text has none)."""
    return text.casefold() if isinstance(text, str) else None
