"""Where papers come from: arXiv (OAI-PMH, Atom API), Hugging Face daily papers and bulk files.

Each source is a pure parser from response bytes to typed results; `harvest` does the fetching.
The exceptions below are shared by the live sources so a caller can map them in one place.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET


class SourceError(Exception):
    """Base class for every failure of a live source (bad response, service error, gave up)."""


class MalformedResponse(SourceError):
    """A response that cannot be parsed at all (truncated or invalid XML/JSON); worth retrying."""


def parse_xml(data: bytes, location: str) -> ET.Element:
    """Parse a whole XML document or raise MalformedResponse naming where it came from."""
    if not data or not data.strip():
        raise MalformedResponse(f"{location}: empty response body")
    try:
        # From bytes, so the parser honours the declared encoding and normalises CRLF line ends.
        return ET.fromstring(data)
    except ET.ParseError as e:
        raise MalformedResponse(f"{location}: invalid XML ({e})") from None
