"""multipart/form-data bodies (audio transcriptions): parsed with python-multipart, re-encoded.

The gateway must rewrite the ``model`` field for the deployment, so the form is
parsed into fields and files and encoded again with a fresh boundary.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from email.message import Message

from python_multipart.multipart import MultipartParser, parse_options_header

from bastion.core.errors import InvalidRequestError


@dataclass(slots=True)
class FilePart:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Form:
    fields: dict[str, str]
    files: list[FilePart]


def parse_multipart(raw: bytes, content_type: str) -> Form:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidRequestError(
            "expected a multipart/form-data body with a boundary (Content-Type header)"
        )
    parts: list[tuple[dict[str, str], bytearray]] = []
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        parts.append(({}, bytearray()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        parts[-1][0][header_name.decode("latin-1").lower()] = header_value.decode("utf-8")
        header_name.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(raw)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own error types
        raise InvalidRequestError(f"malformed multipart/form-data body: {exc}") from None
    form = Form(fields={}, files=[])
    for headers, data in parts:
        disposition = Message()
        disposition["content-disposition"] = headers.get("content-disposition", "")
        name = disposition.get_param("name", header="content-disposition")
        filename = disposition.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            continue
        if isinstance(filename, str):
            form.files.append(
                FilePart(
                    name,
                    filename,
                    headers.get("content-type", "application/octet-stream"),
                    bytes(data),
                )
            )
        else:
            form.fields[name] = data.decode("utf-8", "replace")
    return form


def encode_multipart(form: Form) -> tuple[bytes, str]:
    """The body and its Content-Type header value."""
    boundary = "bastion-" + secrets.token_hex(16)
    out = bytearray()
    for name, value in form.fields.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
        ).encode()
        out += value.encode() + b"\r\n"
    for part in form.files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(part.field)}"; '
            f'filename="{_quote(part.filename)}"\r\nContent-Type: {part.content_type}\r\n\r\n'
        ).encode()
        out += part.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")
