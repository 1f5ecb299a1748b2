"""Repository names, tags and references, parsed at the edge into value types (the spec's grammar)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustyard.errors import NameInvalid, TagInvalid
from trustyard.oci.digest import Digest

# distribution-spec: <name> = [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
#: Distribution's limit on a repository name, so names stay portable to it and to its storage layout.
MAX_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True, order=True)
class RepositoryName:
    value: str

    @classmethod
    def parse(cls, text: str) -> RepositoryName:
        if not text:
            raise NameInvalid("repository name is empty")
        if len(text) > MAX_NAME_LENGTH:
            raise NameInvalid(f"repository name is {len(text)} characters long; the limit is {MAX_NAME_LENGTH}")
        for component in text.split("/"):
            if not _COMPONENT.fullmatch(component):
                raise NameInvalid(
                    f"invalid repository name {text[:300]!r}: each '/'-separated component must be lowercase "
                    "letters and digits, joined by '.', '_', '__' or '-' (component "
                    f"{component[:100]!r} is not)"
                )
        return cls(text)

    @property
    def namespace(self) -> str:
        return self.value.split("/", 1)[0]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, order=True)
class Tag:
    value: str

    @classmethod
    def parse(cls, text: str) -> Tag:
        if not _TAG.fullmatch(text):
            raise TagInvalid(
                f"invalid tag {text[:200]!r}: up to 128 characters of letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-'"
            )
        return cls(text)

    def __str__(self) -> str:
        return self.value


Reference = Tag | Digest


def parse_reference(text: str) -> Reference:
    """A manifest reference: a digest when it contains ':', else a tag."""
    if ":" in text:
        return Digest.parse(text)
    return Tag.parse(text)
