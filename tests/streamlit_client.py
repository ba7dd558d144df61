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
    """What one run of the script drew: each element as (its type, its message)."""

    elements: list[tuple[str, object]] = field(default_factory=list)

    def widget_id(self, key: str) -> str:
        for _, element in self.elements:
            if getattr(element, "id", "").endswith(f"-{key}"):
                return element.id
        raise AssertionError(f"no widget with key {key!r} on the page")

    def texts(self) -> list[str]:
        """Every text the page shows: markdown bodies, progress lines, alerts, labels."""
        found = []
        for _, element in self.elements:
            for name in ("body", "text", "label"):
                value = getattr(element, name, None)
                if isinstance(value, str) and value:
                    found.append(value)
        return found


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
            self.socket: ClientConnection = connect(
                address, sock=tcp, subprotocols=["streamlit"], max_size=None, open_timeout=timeout
            )
        except BaseException:
            tcp.close()
            raise
        self.page = Page()
        self.session_id = ""

    def close(self) -> None:
        self.socket.close()

    def run(self, press: str | None = None) -> Page:
        """Rerun the page as a browser does (pressing the button with key `press`), and return what it drew."""
        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = ""
        if press is not None:
            widget = message.rerun_script.widget_states.widgets.add()
            widget.id = self.page.widget_id(press)
            widget.trigger_value = True
        self.socket.send(message.SerializeToString())
        return self.read_until_finished()

    def read_until_finished(self) -> Page:
        page, deadline = Page(), time.monotonic() + self.timeout
        while True:
            answer = ForwardMsg()
            answer.ParseFromString(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            kind = answer.WhichOneof("type")
            if kind == "delta" and answer.delta.WhichOneof("type") == "new_element":
                element = answer.delta.new_element
                element_type = element.WhichOneof("type")
                page.elements.append((element_type, getattr(element, element_type)))
            elif kind == "new_session":  # a rerun cut short by st.rerun() starts over: keep the last whole page
                self.session_id = answer.new_session.initialize.session_id or self.session_id
                page = Page()
            elif kind == "script_finished" and answer.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self.page = page
                return page
