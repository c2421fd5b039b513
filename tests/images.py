"""A busybox-only image built offline, for the tests and the benchmark: no registry is reachable here, and
Debian's busybox-static binary is statically linked, so a root filesystem holding it alone runs."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

APPLETS = ("sh", "sleep", "dd", "cat", "true", "mkdir", "rm", "kill")


def find_busybox() -> Path | None:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.is_file():
            return path
    found = shutil.which("busybox")
    return Path(found) if found else None


def import_busybox_image(client: Any, busybox: Path, image: str, label: tuple[str, str], command: str) -> None:
    """`docker import` of a root fs with busybox and its applets as `image`, labelled, running `command`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "data", "proc", "sys", "dev"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    repository, tag = image.split(":")
    client.api.import_image_from_data(
        buffer.getvalue(), repository=repository, tag=tag,
        changes=["ENV PATH=/bin", f"LABEL {label[0]}={label[1]}", f"CMD {command}"],
    )
