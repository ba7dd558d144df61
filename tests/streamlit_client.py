"""A browser's side of a Streamlit server, reduced to what the process tests need: open a session over the
websocket, run the page (pressing a button by its key), and read the elements it sent back. No browser needed.

Streamlit's protocol is its own protobuf messages (`BackMsg` up, `ForwardMsg` down); a widget's id ends with the
key the app gave it."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import ClientConnection, connect


@dataclass
class Page:
    """What one run of the script (or of one fragment) drew: each element as (its type, its message, the id of the
    fragment that drew it, or "")."""

    elements: list[tuple[str, object, str]] = field(default_factory=list)

    def widget_id(self, key: str) -> str:
        for _, element, _ in self.elements:
            if getattr(element, "id", "").endswith(f"-{key}"):
                return element.id
        raise AssertionError(f"no widget with key {key!r} on the page")

    def fragment_of(self, element_type: str) -> str:
        """The id of the fragment that drew an element of this type (e.g. "progress")."""
        return next(fragment for kind, _, fragment in self.elements if kind == element_type and fragment)

    def texts(self) -> list[str]:
        """Every text the page shows: markdown bodies, progress lines, alerts, labels."""
        found = []
        for _, element, _ in self.elements:
            for name in ("body", "text", "label"):
                value = getattr(element, name, None)
                if isinstance(value, str) and value:
                    found.append(value)
        return found

    def exceptions(self) -> list[str]:
        """The exception boxes drawn, as "Type: message"."""
        return [f"{element.type}: {element.message}" for kind, element, _ in self.elements if kind == "exception"]


class Tab:
    """One browser tab: a session of the app at `url` (http://host:port)."""

    def __init__(self, url: str, host: str | None = None, timeout: float = 120):
        """Connect to the server at `url`; `host` is the name the browser puts in its Host header (default: the
        url's own)."""
        self.timeout = timeout
        server = urlsplit(url)
        address = f"ws://{host or server.netloc}/_stcore/stream"
        tcp = socket.create_connection((server.hostname, server.port), timeout=timeout)
        try:
            connection = connect(address, sock=tcp, subprotocols=["streamlit"], max_size=None, open_timeout=timeout)
            self.socket: ClientConnection = connection.__enter__()  # entered, as websockets asks; left by close()
        except BaseException:
            tcp.close()
            raise
        self.page = Page()
        self.session_id = ""

    def close(self) -> None:
        self.socket.close()

    def run(self, press: str | None = None, fragment: str = "", wait: bool = True) -> Page | None:
        """Rerun the page as a browser does (pressing the button with key `press`), or only the fragment with that
        id as its timer does; return what it drew, or None at once when not waiting (see `drain`)."""
        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = ""
        message.rerun_script.fragment_id = fragment
        message.rerun_script.is_auto_rerun = bool(fragment)
        if press is not None:
            widget = message.rerun_script.widget_states.widgets.add()
            widget.id = self.page.widget_id(press)
            widget.trigger_value = True
        self.socket.send(message.SerializeToString())
        if not wait:
            return None
        page = self.read(until_finished=True)
        if not fragment:
            self.page = page
        return page

    def drain(self, quiet: float = 3.0) -> Page:
        """Everything the server sends until it has been silent for `quiet` seconds (after runs sent without
        waiting, which may cut each other short)."""
        return self.read(until_finished=False, quiet=quiet)

    def read(self, until_finished: bool, quiet: float = 0.0) -> Page:
        page, deadline = Page(), time.monotonic() + self.timeout
        while True:
            answer = ForwardMsg()
            try:
                answer.ParseFromString(self.socket.recv(timeout=quiet or max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                if until_finished or time.monotonic() > deadline:
                    raise
                return page
            kind = answer.WhichOneof("type")
            if kind == "delta" and answer.delta.WhichOneof("type") == "new_element":
                element = answer.delta.new_element
                element_type = element.WhichOneof("type")
                page.elements.append((element_type, getattr(element, element_type), answer.delta.fragment_id))
            elif kind == "new_session":
                self.session_id = answer.new_session.initialize.session_id or self.session_id
            elif kind == "script_finished" and until_finished:
                if answer.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    page = Page()  # a newer run follows (st.rerun): what this one drew is replaced
                else:
                    return page
