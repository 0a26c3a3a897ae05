"""EC2 Image Builder for the embedded AWS, registered with moto as a service of its own."""

from __future__ import annotations

import functools
import re
import sys

from local.imagebuilder.models import HEALTH_TAG, Health, Image, imagebuilder_backends

__all__ = ["HEALTH_TAG", "Health", "Image", "imagebuilder_backends", "install"]


@functools.cache
def install() -> None:
    """Make moto route `imagebuilder` requests here, in-process and in the server."""
    from moto import backend_index  # noqa: PLC0415 - only when the extension is installed

    # moto finds a service's backend by importing `moto.<service>`.
    sys.modules["moto.imagebuilder"] = sys.modules[__name__]
    backend_index.backend_url_patterns.append(
        ("imagebuilder", re.compile(r"https?://imagebuilder\.(.+)\.amazonaws\.com"))
    )
    from local.imagebuilder import cloudformation  # noqa: F401, PLC0415 - registers the models
