"""Small helpers shared across the hub."""

from __future__ import annotations

import errno
import fcntl
import re
import unicodedata
from pathlib import Path
from typing import IO, Any

from hub.exceptions import HubError

# Letters NFKD does not decompose into an ASCII base letter.
_TRANSLITERATE = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "œ": "oe", "Œ": "oe", "đ": "d",
     "Đ": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th"}
)  # fmt: skip
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, separator: str = "_") -> str:
    """Return text as a lower-case ASCII slug: 'Borne Nord #2' -> 'borne_nord_2'."""
    normalized = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    ascii_text = normalized.encode("ascii", "ignore").decode("ascii").lower()
    return _NOT_SLUG.sub(separator, ascii_text).strip(separator)


# Generation-0 collections run every 700 allocations by default: with tens of thousands of
# long-lived objects (states, registry entries, connections) each young collection is cheap
# but the older generations' full passes stall the loop for tens of milliseconds. After
# start-up, what exists is frozen (moved to a permanent generation the collector skips) and
# the thresholds are raised, so collections are rarer and only look at new objects.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc_after_start() -> None:
    """Freeze what start-up made and raise the collector's thresholds (process-wide)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    if _log_slow_collections not in gc.callbacks:
        gc.callbacks.append(_log_slow_collections)
    _GC_STATE["tuned"] = True


_GC_STATE: dict[str, float | bool] = {"started": 0.0, "tuned": False}
SLOW_GC = 0.05


def freeze_long_lived(reason: str) -> bool:
    """Move what exists now out of the collector's sight, after a burst of long-lived objects.

    A fleet connecting at once (a hub restart, a network coming back) creates hundreds of
    thousands of long-lived objects; the first collection of the middle generation would then
    traverse all of them and stall the loop for a third of a second. Freezing costs no
    traversal. The price: a reference cycle among objects frozen now is never collected
    (plain reference counting still frees everything else), so this runs once a burst has
    settled, not periodically. Only a hub run by the CLI (tune_gc_after_start) does it.
    """
    if not _GC_STATE["tuned"]:
        return False
    import gc
    import logging

    before = gc.get_freeze_count()
    # The youngest garbage (the burst's last closed sockets, finished tasks) is collected
    # first so it is not frozen; only generation 0 is traversed (a few milliseconds; the
    # middle generation after a burst holds a million objects, a 300 ms stall).
    gc.collect(0)
    gc.freeze()
    logging.getLogger("hub.gc").info(
        "froze %d long-lived objects after %s", gc.get_freeze_count() - before, reason
    )
    release_free_memory()
    return True


def freeze_new_long_lived() -> bool:
    """Move what exists now out of the collector's sight, without collecting first.

    For a loop that creates many long-lived objects in slices (a fleet's first sensors): each
    young collection would find them all alive and traverse them, tens of milliseconds per
    slice; frozen, they cost nothing. Garbage cycles made since the last collection are frozen
    with them (never collected): call it during such a burst only, not periodically. Only a
    hub run by the CLI (tune_gc_after_start) does it.
    """
    if not _GC_STATE["tuned"]:
        return False
    import gc

    gc.freeze()
    return True


def _libc() -> Any:
    """glibc, or None where the C library is another (musl, macOS)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


# glibc's mallopt parameter for the number of malloc arenas.
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Keep the C allocator to a few arenas (glibc makes up to 8 per core, one per thread
    that allocates, each holding its own free memory). Call before threads start."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> None:
    """Give the C allocator's free pages back to the system, in a thread (glibc only).

    A burst of connections leaves freed memory between long-lived objects; without this
    the process keeps it as resident memory it no longer uses.
    """
    libc = _libc()
    if libc is None:
        return
    import threading

    # ctypes releases the GIL for the call: the loop runs on meanwhile.
    threading.Thread(target=libc.malloc_trim, args=(0,), name="malloc-trim", daemon=True).start()


def _log_slow_collections(phase: str, info: dict[str, int]) -> None:
    """Log collections that stall the loop long enough to show in request latency."""
    import logging
    import time

    if phase == "start":
        _GC_STATE["started"] = time.perf_counter()
        return
    took = time.perf_counter() - float(_GC_STATE["started"])
    if took >= SLOW_GC:
        logging.getLogger("hub.gc").warning(
            "garbage collection of generation %d took %.0f ms (%d collected)",
            info.get("generation", -1),
            took * 1000,
            info.get("collected", 0),
        )


class ConfigDirBusyError(HubError):
    """Another evhub process holds the config dir."""

    http_status = 409
    error_code = "busy"


def lock_config_dir(config_dir: Path) -> IO[bytes]:
    """Take the config dir for this process (`evhub run`, or a command that writes its storage).

    An exclusive flock on ``.storage/.lock``: the kernel releases it when the process ends,
    however it ends, so a crash never leaves it stale. Keep the returned file open for as long
    as the dir is held. Raises ConfigDirBusyError when another process holds it.
    """
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    handle = (storage / ".lock").open("a+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.close()
        raise ConfigDirBusyError(f"another evhub process is using {config_dir}") from err
    return handle


def bind_error(err: OSError, what: str, host: str, port: int) -> str | None:
    """One line an operator acts on for a listener that could not bind, or None if unknown.

    what names the listener ("HTTP", "OCPP"): "HTTP port 8300 on 0.0.0.0 is in use by another
    program" says more than errno 98 and a traceback.
    """
    where = f"{what} port {port} on {host or '0.0.0.0'}"
    if err.errno == errno.EADDRINUSE:
        return f"{where} is in use by another program"
    if err.errno == errno.EACCES:
        return f"{where} needs privileges this user does not have (pick a port above 1023)"
    if err.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is not an address of this machine"
    return None
