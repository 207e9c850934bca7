"""Server-sent events parsed by the WHATWG rules and written back, one event at a time.

The MCP SDKs disagree on line endings (the Python SDK writes CRLF, the TypeScript SDK LF),
and send priming events with an id and an empty `data`; a proxy that inspects messages must
see every event whatever its framing, or redaction is silently skipped.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_EVENT_CHARS = 32 * 1024 * 1024


class EventTooLarge(Exception):
    """An event grew past MAX_EVENT_CHARS without ending; the stream is cut (fail closed)."""


@dataclass
class Event:
    """One dispatched event; `data` is None when the event had no data field at all."""

    data: str | None = None
    event: str | None = None
    id: str | None = None
    retry: str | None = None
    comments: list[str] = field(default_factory=list)

    def encode(self, data: str | None = None) -> bytes:
        """The event in LF framing; `data` replaces the original data when given."""
        lines = [f":{comment}" for comment in self.comments]
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        text = self.data if data is None else data
        if text is not None:
            lines.extend(f"data: {line}" for line in text.split("\n"))
        return ("\n".join(lines) + "\n\n").encode()


class SseParser:
    """Feed bytes as they arrive; complete events come out in order."""

    def __init__(self, max_event_chars: int = MAX_EVENT_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        # A line still without its end, in the pieces it came in: joined once it ends, so a
        # long line read in many chunks is not copied and searched again for each.
        self._pieces: list[str] = []
        self._pieces_size = 0
        self._first = True
        self._pending_cr = False
        self._event = Event()
        self._data: list[str] = []
        self._has_fields = False
        self._size = 0
        self._max = max_event_chars

    def feed(self, chunk: bytes) -> Iterator[Event]:
        text = self._decoder.decode(chunk)
        if self._first and text:
            text = text.removeprefix("\ufeff")
            self._first = False
        if self._pending_cr and text.startswith("\n"):
            # The CR that ended the previous chunk was the first half of a CRLF.
            text = text[1:]
        self._pending_cr = False
        if "\n" not in text and "\r" not in text:
            self._pieces.append(text)
            self._pieces_size += len(text)
            if len(self._buffer) + self._pieces_size + self._size > self._max:
                raise EventTooLarge("server-sent event too large")
            return
        self._join(text)
        yield from self._lines()

    def close(self) -> Iterator[Event]:
        """End of stream: a final event without its blank line is dropped, as WHATWG says."""
        self._join(self._decoder.decode(b"", final=True))
        yield from self._lines()
        return

    def _join(self, text: str) -> None:
        if self._pieces:
            self._buffer += "".join(self._pieces)
            self._pieces.clear()
            self._pieces_size = 0
        self._buffer += text

    def _lines(self) -> Iterator[Event]:
        buffer = self._buffer
        start = 0
        length = len(buffer)
        # Where the next CR and LF are: each searched for again only once passed, as a
        # search from every line's start to a terminator the text lacks read it all again.
        cr = lf = -2
        while start < length:
            if cr != -1 and cr < start:
                cr = buffer.find("\r", start)
            if lf != -1 and lf < start:
                lf = buffer.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                end = cr
                if cr + 1 < length:
                    next_start = cr + 2 if buffer[cr + 1] == "\n" else cr + 1
                else:
                    next_start = cr + 1
                    self._pending_cr = True
            else:
                end = lf
                next_start = lf + 1
            event = self._line(buffer[start:end])
            start = next_start
            if event is not None:
                yield event
        self._buffer = buffer[start:]
        if len(self._buffer) + self._size > self._max:
            raise EventTooLarge("server-sent event too large")

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        self._size += len(line)
        if self._size > self._max:
            raise EventTooLarge("server-sent event too large")
        if line.startswith(":"):
            self._event.comments.append(line[1:])
            self._has_fields = True
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._has_fields = True
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event.event = value
        elif name == "id":
            if "\0" not in value:
                self._event.id = value
        elif name == "retry" and value.isascii() and value.isdigit():  # ASCII digits only
            self._event.retry = value
        return None

    def _dispatch(self) -> Event | None:
        if not self._has_fields:
            return None
        event = self._event
        event.data = "\n".join(self._data) if self._data else None
        self._event = Event()
        self._data = []
        self._has_fields = False
        self._size = 0
        return event
