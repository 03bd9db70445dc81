"""Safe output names: slugs of CRM text, resolved inside the output root.

Design decisions
----------------
* **Every path component is a slug.** Scope names come from the CRM and are
  data, not paths: ``../../etc``, ``/``, spaces, emoji and ``<script>`` are all
  reduced by :func:`slug` (python-slugify) to ``[a-z0-9-]`` text. The literal
  parts of an output pattern are slugged too, so a pattern cannot climb out of
  the output root either.
* **Nothing becomes empty.** A name with no sluggable character (only emoji or
  punctuation) becomes ``x-<hash>`` of the original text, so it stays unique.
* **Long names lose their scope part, never their period.** A file name is at
  most :data:`MAX_SLUG` characters; when a pattern's component is longer, only
  the scope fields (team, seller, name, scope id) are shortened, each keeping
  a hash of its full slug (see :func:`kpireport.report.params.expand`), so
  ``team-report-{team}-{period}`` keeps ``-2026-10`` and two long team names
  stay apart.
* **Belt and braces.** :func:`resolve_inside` resolves the final path and
  refuses anything that is not inside the root, whatever produced it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from slugify import slugify

from kpireport.errors import ParamsError

#: longest slug kept for one path component (file systems allow 255 bytes)
MAX_SLUG = 80


def short_hash(text: str, n: int = 6) -> str:
    """A short, stable hex digest of ``text`` (to keep colliding slugs apart)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def slug(text: object, max_length: int | None = MAX_SLUG) -> str:
    """Lower-case ASCII slug of ``text`` made of ``[a-z0-9-]``, never empty.

    Examples
    --------
    >>> slug("Team Nord-Öst")
    'team-nord-ost'
    >>> slug("../../etc")
    'etc'
    """
    raw = "" if text is None else str(text)
    s = slugify(raw, max_length=max_length or 0, word_boundary=False, lowercase=True)
    return s or f"x-{short_hash(raw)}"


def slug_path(rel: str) -> str:
    """Slug every ``/``-separated component of ``rel`` and drop empty ones."""
    parts = [slug(p) for p in str(rel).replace("\\", "/").split("/") if p.strip(" .")]
    if not parts:
        raise ParamsError(f"The output pattern produced an empty path ('{rel}').")
    return "/".join(parts)


def resolve_inside(root: Path, rel: str) -> Path:
    """Resolve ``root / rel`` and make sure the result lies inside ``root``.

    Raises
    ------
    ParamsError
        When the resolved path escapes ``root`` (it cannot after
        :func:`slug_path`, but the check does not rely on that).
    """
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if target == base or not target.is_relative_to(base):
        raise ParamsError(f"The output path '{rel}' resolves outside the output folder '{base}'.")
    return target
